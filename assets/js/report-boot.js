/*
 * report-boot.js: runs after the report's own JS. Shows the right language, draws the report
 * (its init functions, then CHART_DATA comments), and talks to the parent by postMessage
 * (SPEC §3.3). In frame mode (the report page) that is language, theme, height, sections and
 * scroll-to; in print-source mode (the print view's hidden frame, as wide as the A4 text) it
 * expands every <details> and sends the drawn markup for the print view to show.
 */
/* global initializeAllVisuals_report, initializeAllVisuals_report_en */
(function () {
  'use strict';

  const LOG = '[cr-report]';
  const html = document.documentElement;
  const mode = html.dataset.mode === 'print-source' ? 'print-source' : 'frame';
  const parentWindow = window.parent && window.parent !== window ? window.parent : null;
  const talksToParent = mode === 'frame' && parentWindow !== null;
  const feedsPrint = mode === 'print-source' && parentWindow !== null;
  const runtime = window.crReport || {};
  // Without the runtime (it failed to load) the report still shows, minus charts.
  const languageManager = window.languageManager || (window.languageManager = { currentLanguage: 'vi' });

  let requested = html.dataset.lang === 'en' ? 'en' : 'vi'; // what the reader asked for
  let shown = null; // the content language on screen
  let started = false;

  // ---------------------------------------------------------------- language

  const languageDiv = (lang) => document.getElementById(`report-content-${lang}`);

  // English only when its div exists (no English version, or a print view of the other one).
  function contentLanguageFor(lang) {
    if (lang === 'en' && languageDiv('en')) return 'en';
    if (languageDiv('vi')) return 'vi';
    return languageDiv('en') ? 'en' : 'vi';
  }

  function showLanguage(lang) {
    requested = lang;
    shown = contentLanguageFor(lang);
    for (const div of document.querySelectorAll('#report-root > .report-lang')) {
      div.hidden = div.dataset.lang !== shown;
    }
    languageManager.currentLanguage = shown;
    languageManager.requestedLanguage = requested;
    html.lang = shown;
    html.dataset.lang = requested;
  }

  // ---------------------------------------------------------------- drawing

  function callReport(name, call) {
    try {
      call();
    } catch (err) {
      console.error(`${LOG} ${name} threw; continuing with the rest of the report:`, err);
    }
  }

  // Report functions are globals of the report's classic script (possibly `const`/`let`
  // bindings, which are not on window), so they are looked up by bare name.
  function draw() {
    const lang = shown;
    if (typeof initializeAllVisuals_report === 'function') {
      callReport('initializeAllVisuals_report', () => initializeAllVisuals_report(lang));
    }
    if (lang === 'en' && typeof initializeAllVisuals_report_en === 'function') {
      callReport('initializeAllVisuals_report_en', () => initializeAllVisuals_report_en());
    }
    const scope = languageDiv(lang) || document.body;
    if (typeof runtime.renderChartDataComments === 'function') {
      callReport('renderChartDataComments', () => runtime.renderChartDataComments(scope));
    }
    secureLinks(document.body);
    wrapTables(scope);
    focusableScrollers(scope);
  }

  // ---------------------------------------------------------------- content fix-ups

  function isWebUrl(href) {
    try {
      const { protocol } = new URL(href, document.baseURI);
      return protocol === 'http:' || protocol === 'https:';
    } catch (err) {
      return false;
    }
  }

  // http(s) links open in a new tab; any other scheme (javascript:, data:, …) loses its href
  // and keeps its text. In-page anchors are left to onLinkClick.
  function secureLink(link) {
    const href = link.getAttribute('href').trim();
    if (href.startsWith('#')) return true;
    if (isWebUrl(href)) {
      link.setAttribute('target', '_blank');
      link.setAttribute('rel', 'noopener noreferrer');
      return true;
    }
    link.removeAttribute('href');
    link.removeAttribute('target');
    return false;
  }

  function secureLinks(scope) {
    for (const link of scope.querySelectorAll('a[href], area[href]')) secureLink(link);
  }

  // A table the report left unwrapped would widen the page on phones: give it a scroller.
  function wrapTables(scope) {
    for (const table of scope.querySelectorAll('table')) {
      const parent = table.parentElement;
      if (!parent || parent.closest('.table-container')) continue;
      const wrapper = document.createElement('div');
      wrapper.className = 'table-container';
      parent.insertBefore(wrapper, table);
      wrapper.appendChild(table);
    }
  }

  // A table wider than its box scrolls; a keyboard can only scroll what it can focus.
  function focusableScrollers(scope) {
    for (const box of scope.querySelectorAll('.table-container')) {
      if (box.scrollWidth > box.clientWidth + 1) box.setAttribute('tabindex', '0');
      else box.removeAttribute('tabindex');
    }
  }

  function openAllDetails() {
    for (const details of document.querySelectorAll('details')) details.open = true;
  }

  function findInShownLanguage(id) {
    const scope = languageDiv(shown) || document.body;
    const candidates = [id, shown === 'en' ? `${id}-en` : id.replace(/-en$/, '')];
    for (const candidate of candidates) {
      const el = typeof CSS !== 'undefined' && CSS.escape
        ? scope.querySelector(`#${CSS.escape(candidate)}`)
        : Array.from(scope.querySelectorAll('[id]')).find((e) => e.id === candidate);
      if (el) return el;
    }
    return null;
  }

  // Offset from the document top, after opening any <details> that hides the target.
  function offsetOf(id) {
    const el = findInShownLanguage(id);
    if (!el) return null;
    for (let d = el.closest('details'); d; d = d.parentElement && d.parentElement.closest('details')) {
      d.open = true;
    }
    return Math.max(0, Math.round(el.getBoundingClientRect().top + window.scrollY));
  }

  function collectSections() {
    const scope = languageDiv(shown);
    if (!scope) return [];
    return Array.from(scope.querySelectorAll('section[id]'))
      .filter((section) => section.id)
      .map((section) => {
        const heading = section.querySelector('h2');
        const title = heading ? heading.textContent.replace(/\s+/g, ' ').trim() : '';
        return { id: section.id, title: title.slice(0, 300) };
      });
  }

  // ---------------------------------------------------------------- parent messaging

  function post(message) {
    if (!talksToParent) return;
    try {
      parentWindow.postMessage(message, '*');
    } catch (err) {
      console.error(`${LOG} postMessage failed:`, err);
    }
  }

  let lastHeight = -1;
  let heightTimer = 0;

  // Measured from the root box, not scrollHeight: scrollHeight never drops below the iframe's
  // current height, so the frame could grow but never shrink.
  function postHeight() {
    if (!talksToParent || !document.body) return;
    const height = Math.ceil(Math.max(html.getBoundingClientRect().height, document.body.scrollHeight));
    if (height !== lastHeight) {
      lastHeight = height;
      post({ type: 'cr:height', height });
    }
  }

  // Coalesces bursts with a timer, not requestAnimationFrame: rAF is paused in an off-screen
  // cross-origin frame, and an unsized frame below the fold is exactly when the height matters.
  function queueHeight() {
    if (heightTimer) return;
    heightTimer = setTimeout(() => {
      heightTimer = 0;
      postHeight();
    }, 16);
  }

  function watchHeight() {
    if (typeof ResizeObserver === 'function') {
      const observer = new ResizeObserver(queueHeight);
      observer.observe(html);
      observer.observe(document.body);
    }
    window.addEventListener('resize', queueHeight);
    window.addEventListener('load', queueHeight);
    document.addEventListener('load', queueHeight, true); // images (load does not bubble)
    document.addEventListener('error', queueHeight, true);
    document.addEventListener('toggle', queueHeight, true); // <details>
    if (document.fonts && document.fonts.ready) document.fonts.ready.then(queueHeight, () => {});
    // Late layout shifts that no event reports (throttled observers in an off-screen frame).
    [300, 1000, 3000].forEach((ms) => setTimeout(postHeight, ms));
  }

  function setLanguage(lang) {
    const before = shown;
    showLanguage(lang);
    if (!started) return; // start() will draw in the new language
    if (shown !== before) draw();
    post({ type: 'cr:sections', lang: shown, requestedLang: requested, sections: collectSections() });
    postHeight();
  }

  function setTheme(theme) {
    if (html.dataset.theme === theme) return;
    html.dataset.theme = theme;
    if (started) draw(); // colours a report computed in JS follow the new theme
    postHeight();
  }

  function onMessage(event) {
    if (!parentWindow || event.source !== parentWindow) return;
    const msg = event.data;
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return;
    switch (msg.type) {
      case 'cr:set-language':
        if (msg.lang === 'vi' || msg.lang === 'en') setLanguage(msg.lang);
        break;
      case 'cr:set-theme':
        if (msg.theme === 'light' || msg.theme === 'dark') setTheme(msg.theme);
        break;
      case 'cr:scroll-to':
        if (typeof msg.id === 'string' && msg.id && msg.id.length <= 200) {
          post({ type: 'cr:section-offset', id: msg.id, top: offsetOf(msg.id) });
          queueHeight();
        }
        break;
      default:
        break;
    }
  }

  // Links report JS added after the last fix-up pass are checked at click time. In the frame,
  // in-page anchors cannot scroll a document the parent sizes to fit: the parent is asked to.
  function onLinkClick(event) {
    const link = event.target instanceof Element ? event.target.closest('a[href], area[href]') : null;
    if (!link) return;
    if (!secureLink(link)) {
      event.preventDefault();
      return;
    }
    const href = link.getAttribute('href').trim();
    if (!href.startsWith('#')) {
      // The sandbox grants no pop-ups: in the frame, the parent opens web links for the
      // reader (after checking them), with this click as the user gesture.
      if (talksToParent) {
        event.preventDefault();
        post({ type: 'cr:open-link', href: new URL(href, document.baseURI).href });
      }
      return;
    }
    if (!talksToParent) return;
    event.preventDefault();
    let id = href.slice(1);
    try {
      id = decodeURIComponent(id);
    } catch (err) {
      // keep the raw id
    }
    if (id) post({ type: 'cr:section-offset', id, top: offsetOf(id) });
  }

  // ---------------------------------------------------------------- width changes

  let resizeTimer = 0;
  let resizeRedraws = [];

  // Charts are laid out at their container's pixel width; the runtime says when a container's
  // width has moved enough (rotation, a grid breakpoint, print) to be worth a redraw. A cap on
  // redraws per window stops a layout that never settles from redrawing forever.
  function redrawIfWidthChanged() {
    if (started) focusableScrollers(languageDiv(shown) || document.body);
    if (!started || typeof runtime.chartsOutOfDate !== 'function') return;
    if (!runtime.chartsOutOfDate(languageDiv(shown) || document.body)) return;
    const now = Date.now();
    resizeRedraws = resizeRedraws.filter((t) => now - t < 10000);
    if (resizeRedraws.length >= 6) return;
    resizeRedraws.push(now);
    draw();
    postHeight();
  }

  function watchWidth() {
    const onResize = () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(redrawIfWidthChanged, 150);
    };
    const root = document.getElementById('report-root');
    if (typeof ResizeObserver === 'function' && root) new ResizeObserver(onResize).observe(root);
    window.addEventListener('resize', onResize);
  }

  // ---------------------------------------------------------------- print source

  let renderTimer = 0;
  let renderPosts = 0;
  const RENDER_POSTS_MAX = 40;

  // The drawn markup of the shown language, again whenever the report changes it (reports
  // may fill their page late); bounded so a report that never settles cannot flood the parent.
  // What paper can show: no scripts, frames, forms or handlers (the print view removes them
  // too, but markup that carries none is shown without a single refusal in its console).
  const INERT_DROP = 'script, iframe, frame, object, embed, meta, link, base, form, noscript, template';

  function paperCopy(div) {
    const copy = div.cloneNode(true);
    for (const el of copy.querySelectorAll(INERT_DROP)) el.remove();
    for (const el of copy.querySelectorAll('*')) {
      for (const attr of Array.from(el.attributes)) {
        if (attr.name.toLowerCase().startsWith('on')) el.removeAttribute(attr.name);
      }
    }
    return copy.innerHTML;
  }

  function postRendered() {
    renderTimer = 0;
    const div = languageDiv(shown);
    if (!feedsPrint || !div || renderPosts >= RENDER_POSTS_MAX) return;
    renderPosts += 1;
    try {
      parentWindow.postMessage({ type: 'cr:rendered', lang: shown, html: paperCopy(div) }, '*');
    } catch (err) {
      console.error(`${LOG} postMessage failed:`, err);
    }
  }

  function queueRendered() {
    if (!renderTimer) renderTimer = setTimeout(postRendered, 120);
  }

  function feedPrint() {
    postRendered();
    const root = document.getElementById('report-root');
    if (typeof MutationObserver === 'function' && root) {
      new MutationObserver(queueRendered).observe(root, {
        subtree: true, childList: true, attributes: true, characterData: true,
      });
    }
    window.addEventListener('load', queueRendered);
  }

  // ---------------------------------------------------------------- start

  function start() {
    if (started) return;
    showLanguage(requested);
    // On paper every detail is open: open them before drawing, so charts inside get a width.
    if (mode === 'print-source') openAllDetails();
    draw();
    started = true;
    if (mode === 'print-source') {
      feedPrint();
      return;
    }
    watchWidth();
    if (!talksToParent) return;
    post({
      type: 'cr:ready', lang: shown, requestedLang: requested, hasEn: !!languageDiv('en'), sections: collectSections(),
    });
    postHeight();
    watchHeight();
  }

  // Show the right language and defuse links now, before first paint and before any
  // DOMContentLoaded handler a report registered itself; draw once the document is complete.
  showLanguage(requested);
  if (document.body) secureLinks(document.body);
  document.addEventListener('click', onLinkClick, true);
  if (talksToParent) window.addEventListener('message', onMessage);
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
  else start();
})();
