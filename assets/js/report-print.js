/*
 * report-print.js: the only script of the print view. The print view is a top-level document,
 * and a document may always navigate itself, sandboxed or not; so the report's own script never
 * runs here. It runs in the print source, a sandboxed frame of the width of the A4 text (so
 * charts are drawn for paper whatever the screen), which sends back its drawn markup; that
 * markup is cleaned of anything active and shown in place of the undrawn one. A source that
 * navigates itself away is dropped, and the report stays as the server sent it.
 */
(function () {
  'use strict';

  const MAX_HTML = 8 * 1024 * 1024;
  const root = document.getElementById('report-root');
  const lang = document.documentElement.dataset.lang === 'en' ? 'en' : 'vi';

  function openAllDetails() {
    for (const details of document.querySelectorAll('details')) details.open = true;
  }

  // On screen a table wider than the preview scrolls; a keyboard can only scroll what it can focus.
  function focusableScrollers() {
    for (const box of document.querySelectorAll('.table-container')) {
      if (box.scrollWidth > box.clientWidth + 1) box.setAttribute('tabindex', '0');
      else box.removeAttribute('tabindex');
    }
  }

  // ---------------------------------------------------------------- cleaning

  // Nothing that runs, loads a document, submits or redirects survives; the CSP would refuse
  // most of it anyway, this keeps the console quiet and the page inert.
  const DROP = new Set(['script', 'iframe', 'frame', 'frameset', 'object', 'embed', 'meta', 'link',
    'base', 'form', 'input', 'button', 'select', 'textarea', 'noscript', 'template', 'audio', 'video',
    'source', 'track', 'dialog', 'portal', 'animate', 'animatemotion', 'animatetransform', 'set',
    'foreignobject']);
  const URL_ATTRS = new Set(['href', 'xlink:href', 'src', 'srcset', 'action', 'formaction', 'poster',
    'background', 'ping']);

  function safeUrl(name, value) {
    const v = value.trim();
    if (v.startsWith('#')) return true;
    if (name === 'src' && /^data:image\/(png|gif|jpeg|webp);/i.test(v)) return true;
    try {
      const url = new URL(v, document.baseURI);
      return url.protocol === 'https:' || url.protocol === 'http:';
    } catch (err) {
      return false;
    }
  }

  function clean(node) {
    for (const el of Array.from(node.querySelectorAll('*'))) {
      if (DROP.has(el.localName.toLowerCase())) {
        el.remove();
        continue;
      }
      for (const attr of Array.from(el.attributes)) {
        const name = attr.name.toLowerCase();
        if (name.startsWith('on') || (URL_ATTRS.has(name) && !safeUrl(name, attr.value))) {
          el.removeAttribute(attr.name);
        }
      }
      if (el.localName === 'a' && el.hasAttribute('href') && !el.getAttribute('href').startsWith('#')) {
        el.setAttribute('target', '_blank');
        el.setAttribute('rel', 'noopener noreferrer');
      }
    }
    return node;
  }

  // ---------------------------------------------------------------- the source frame

  const target = document.getElementById(`report-content-${lang}`);

  // Markup parsed in a document of its own (scripting off, nothing loads, this page's CSP not
  // involved), cleaned there, and only then brought into this page.
  function parse(html) {
    const doc = new DOMParser().parseFromString(`<!doctype html><body>${html}`, 'text/html');
    const fragment = document.createDocumentFragment();
    fragment.append(...Array.from(clean(doc.body).childNodes).map((n) => document.adoptNode(n)));
    return fragment;
  }

  // The report as served, for when the source is dropped.
  const original = target ? target.innerHTML : '';
  let frame = null;
  let loads = 0;
  let dropped = false;

  // The title once on the first page: an element near the top of the report that only
  // repeats the view's headline (a headline card, the generator's title) is left off paper.
  function markDuplicateTitle() {
    const heading = document.querySelector('.print-header h1');
    if (!heading || !target) return;
    const norm = (text) => text.replace(/\s+/g, ' ').trim().toLowerCase();
    const title = norm(heading.textContent);
    if (!title) return;
    const candidates = Array.from(target.querySelectorAll('h1, h2, h3, p')).slice(0, 6);
    for (const el of candidates) {
      if (norm(el.textContent) === title) el.classList.add('print-duplicate');
    }
  }

  function show(html) {
    target.replaceChildren(parse(html));
    openAllDetails();
    markDuplicateTitle();
    focusableScrollers();
  }

  function drop() {
    dropped = true;
    window.removeEventListener('message', onMessage);
    if (frame) frame.remove();
    frame = null;
    if (target) target.replaceChildren(parse(original));
    openAllDetails();
    markDuplicateTitle();
    const notice = document.getElementById('print-blocked');
    if (notice) notice.hidden = false;
  }

  function onMessage(event) {
    if (dropped || !frame || event.source !== frame.contentWindow) return;
    const msg = event.data;
    if (!msg || typeof msg !== 'object' || msg.type !== 'cr:rendered') return;
    if (msg.lang !== lang || typeof msg.html !== 'string' || msg.html.length > MAX_HTML) return;
    show(msg.html);
    document.documentElement.dataset.drawn = 'true';
  }

  function startSource() {
    const src = root && root.getAttribute('data-source');
    if (!src || !target) return;
    window.addEventListener('message', onMessage);
    frame = document.createElement('iframe');
    frame.className = 'print-source';
    frame.setAttribute('sandbox', 'allow-scripts');
    frame.setAttribute('aria-hidden', 'true');
    frame.setAttribute('tabindex', '-1');
    frame.setAttribute('title', '');
    // Our document loads once; a second load is the report navigating its frame elsewhere.
    frame.addEventListener('load', () => {
      loads += 1;
      if (loads > 1 && !dropped) drop();
    });
    frame.src = src;
    document.body.appendChild(frame);
  }

  // ---------------------------------------------------------------- start

  function start() {
    openAllDetails();
    markDuplicateTitle();
    focusableScrollers();
    window.addEventListener('resize', focusableScrollers);
    const button = document.getElementById('print-button');
    if (button) {
      button.addEventListener('click', () => {
        try {
          window.print();
        } catch (err) {
          console.error('[cr-print] window.print() failed:', err);
        }
      });
    }
    window.addEventListener('beforeprint', openAllDetails);
    startSource();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
  else start();
})();
