// The site's own page script: theme and language switching without a reload, dates in the
// reader's language, and the conversation with the sandboxed report frame.
(function () {
  'use strict';

  const root = document.documentElement;
  const MAX_FRAME_HEIGHT = 120000;
  const MONTHS_EN = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const MONTHS_EN_LONG = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
    'September', 'October', 'November', 'December'];

  const strings = (() => {
    const el = document.getElementById('i18n-strings');
    try {
      return el ? JSON.parse(el.textContent) : {};
    } catch (e) {
      return {};
    }
  })();

  function currentLang() {
    return root.getAttribute('data-lang') === 'en' ? 'en' : 'vi';
  }

  function currentTheme() {
    return root.getAttribute('data-theme') === 'dark' ? 'dark' : 'light';
  }

  function store(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (e) {
      // Private mode or storage disabled: the choice lasts for this page only.
    }
  }

  // ---- dates ---------------------------------------------------------------------------

  // The audience's clock, as the server keeps it (src/i18n.rs): UTC+7, no daylight saving.
  // Plain arithmetic: a time-zone formatter costs more than the rest of a list page's dates.
  const OFFSET_MS = 7 * 3600 * 1000;

  function localParts(date) {
    const local = new Date(date.getTime() + OFFSET_MS);
    return {
      year: String(local.getUTCFullYear()), month: local.getUTCMonth() + 1, day: local.getUTCDate(),
      hour: pad(local.getUTCHours()), minute: pad(local.getUTCMinutes()),
    };
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  // Mirrors the server's formatting (src/i18n.rs format_age) so a switch changes only the
  // language. Written out rather than asked of Intl.RelativeTimeFormat: building that formatter
  // loads locale data, the longest task of a page's start on a phone.
  const AGE_UNITS = {
    minute: ['phút', 'minute'], hour: ['giờ', 'hour'], day: ['ngày', 'day'],
    month: ['tháng', 'month'], year: ['năm', 'year'],
  };

  function formatAge(date, lang) {
    const minutes = Math.max(0, Math.floor((Date.now() - date.getTime()) / 60000));
    const days = Math.floor(minutes / 1440);
    let n;
    let unit;
    if (minutes < 60) [n, unit] = [Math.max(1, minutes), 'minute'];
    else if (minutes < 1440) [n, unit] = [Math.floor(minutes / 60), 'hour'];
    else if (days < 45) [n, unit] = [days, 'day'];
    else if (days < 730) [n, unit] = [Math.floor(days / 30.44), 'month'];
    else [n, unit] = [Math.floor(days / 365.25), 'year'];
    const [vi, en] = AGE_UNITS[unit];
    if (lang === 'vi') return `${n} ${vi} trước`;
    return n === 1 ? `1 ${en} ago` : `${n} ${en}s ago`;
  }

  function formatDate(date, lang, kind) {
    if (kind === 'age') return formatAge(date, lang);
    const p = localParts(date);
    if (kind === 'datetime') {
      return lang === 'vi'
        ? `${pad(p.day)}/${pad(p.month)}/${p.year} ${p.hour}:${p.minute} (UTC+7)`
        : `${MONTHS_EN[p.month - 1]} ${p.day}, ${p.year}, ${p.hour}:${p.minute} (UTC+7)`;
    }
    return lang === 'vi'
      ? `${p.day} tháng ${p.month}, ${p.year}`
      : `${MONTHS_EN_LONG[p.month - 1]} ${p.day}, ${p.year}`;
  }

  function refreshDates(lang) {
    document.querySelectorAll('time[datetime][data-format]').forEach((el) => {
      const date = new Date(el.getAttribute('datetime'));
      if (!Number.isNaN(date.getTime())) {
        el.textContent = formatDate(date, lang, el.getAttribute('data-format'));
      }
    });
  }

  // ---- language ------------------------------------------------------------------------

  function applyLanguage(lang) {
    const table = strings[lang] || {};
    root.setAttribute('lang', lang);
    root.setAttribute('data-lang', lang);
    document.querySelectorAll('[data-i18n]').forEach((el) => {
      const text = table[el.getAttribute('data-i18n')];
      if (text) el.textContent = text;
    });
    // Labels: aria-label and title together (buttons), or each alone; an optional suffix
    // carries what is not translated ("Trang 3" / "Page 3").
    const label = (el, key, attrs) => {
      const text = table[el.getAttribute(key)];
      if (!text) return;
      const full = text + (el.getAttribute('data-label-suffix') || '');
      attrs.forEach((a) => el.setAttribute(a, full));
    };
    document.querySelectorAll('[data-i18n-label]').forEach((el) => label(el, 'data-i18n-label', ['aria-label', 'title']));
    document.querySelectorAll('[data-i18n-aria]').forEach((el) => label(el, 'data-i18n-aria', ['aria-label']));
    document.querySelectorAll('[data-i18n-title]').forEach((el) => label(el, 'data-i18n-title', ['title']));
    document.querySelectorAll('[data-i18n-placeholder]').forEach((el) => label(el, 'data-i18n-placeholder', ['placeholder']));
    // Report titles and summaries, the page title and description; a Vietnamese-only report
    // keeps its Vietnamese text for English readers, marked with lang="vi".
    document.querySelectorAll('[data-vi][data-en]').forEach((el) => {
      const text = el.getAttribute(`data-${lang}`);
      if (el.localName === 'meta') el.setAttribute('content', text);
      else el.textContent = text;
      const textLang = el.getAttribute(`data-lang-${lang}`);
      if (textLang) el.setAttribute('lang', textLang);
      else if (el.hasAttribute('data-lang-en') || el.hasAttribute('data-lang-vi')) el.removeAttribute('lang');
    });
    refreshDates(lang);
    const other = lang === 'vi' ? 'en' : 'vi';
    const toggle = document.getElementById('lang-toggle');
    if (toggle) {
      toggle.setAttribute('href', `${window.location.pathname}?lang=${other}`);
      toggle.setAttribute('hreflang', other);
      toggle.setAttribute('lang', other); // its words are in the language it switches to
    }
    document.querySelectorAll('a[href*="lang="]').forEach((a) => {
      if (a === toggle) return;
      const url = new URL(a.getAttribute('href'), window.location.href);
      if (url.origin !== window.location.origin) return;
      url.searchParams.set('lang', lang);
      a.setAttribute('href', url.pathname + url.search + url.hash);
    });
    const report = document.getElementById('report');
    const missing = document.getElementById('english-missing');
    if (report && missing) {
      missing.hidden = !(lang === 'en' && report.getAttribute('data-has-en') !== 'true');
    }
    document.cookie = `lang=${lang}; Path=/; Max-Age=31536000; SameSite=Lax`;
    const url = new URL(window.location.href);
    if (url.searchParams.has('lang')) {
      url.searchParams.delete('lang');
      window.history.replaceState(null, '', url.pathname + url.search + url.hash);
    }
    document.dispatchEvent(new CustomEvent('cr:language', { detail: { lang } }));
    frame.post({ type: 'cr:set-language', lang });
  }

  // ---- theme ---------------------------------------------------------------------------

  function applyTheme(theme) {
    root.setAttribute('data-theme', theme);
    store('theme', theme);
    document.dispatchEvent(new CustomEvent('cr:theme', { detail: { theme } }));
    frame.post({ type: 'cr:set-theme', theme });
  }

  // ---- report frame --------------------------------------------------------------------

  const frame = (() => {
    const el = document.getElementById('report-frame');
    let ready = false;
    let pendingScroll = null;

    function post(message) {
      if (el && ready && el.contentWindow) el.contentWindow.postMessage(message, '*');
    }

    function renderToc(sections) {
      const list = document.getElementById('toc-list');
      if (!list || !Array.isArray(sections)) return;
      list.replaceChildren(...sections.slice(0, 200).map((s) => {
        const li = document.createElement('li');
        const a = document.createElement('a');
        a.href = `#${String(s.id)}`;
        a.setAttribute('data-section', String(s.id));
        a.textContent = String(s.title || s.id).slice(0, 300);
        li.appendChild(a);
        return li;
      }));
    }

    function scrollTo(id) {
      if (!ready) {
        pendingScroll = id;
        return;
      }
      post({ type: 'cr:scroll-to', id });
    }

    function onMessage(event) {
      // The frame has an opaque origin; trust only messages from its window, and only the
      // kinds a frame may send.
      if (!el || event.source !== el.contentWindow) return;
      const msg = event.data;
      if (!msg || typeof msg !== 'object') return;
      switch (msg.type) {
        case 'cr:ready':
          ready = true;
          renderToc(msg.sections);
          // Choices made while the frame was loading are sent now.
          if (msg.lang !== currentLang()) post({ type: 'cr:set-language', lang: currentLang() });
          post({ type: 'cr:set-theme', theme: currentTheme() });
          if (pendingScroll) {
            post({ type: 'cr:scroll-to', id: pendingScroll });
            pendingScroll = null;
          }
          break;
        case 'cr:sections':
          renderToc(msg.sections);
          break;
        case 'cr:height': {
          const h = Number(msg.height);
          if (Number.isFinite(h) && h > 0) el.style.height = `${Math.min(Math.ceil(h), MAX_FRAME_HEIGHT)}px`;
          break;
        }
        case 'cr:open-link': {
          // Reports run without pop-up rights; web links open here, never other schemes.
          let url = null;
          try {
            url = new URL(String(msg.href));
          } catch (e) {
            url = null;
          }
          if (url && (url.protocol === 'https:' || url.protocol === 'http:')) {
            window.open(url.href, '_blank', 'noopener,noreferrer');
          }
          break;
        }
        case 'cr:section-offset': {
          const top = Number(msg.top);
          if (!Number.isFinite(top)) return;
          const header = document.querySelector('.site-header');
          const offset = header ? header.getBoundingClientRect().height + 12 : 12;
          const y = el.getBoundingClientRect().top + window.scrollY + top - offset;
          window.scrollTo({ top: Math.max(0, y), behavior: 'smooth' });
          if (typeof msg.id === 'string') window.history.replaceState(null, '', `#${msg.id}`);
          break;
        }
        default:
          break;
      }
    }

    // Our document loads once (counted from when we set the src); language and theme travel
    // by message. A second load means the report navigated its own frame elsewhere
    // (sandboxing cannot forbid that): hide it.
    let loads = 0;
    function onLoad() {
      loads += 1;
      if (loads < 2) return;
      ready = false;
      el.removeEventListener('load', onLoad);
      el.src = 'about:blank';
      el.hidden = true;
      const notice = document.getElementById('frame-blocked');
      if (notice) notice.hidden = false;
    }

    function start() {
      if (!el) return;
      window.addEventListener('message', onMessage);
      const src = el.getAttribute('data-src');
      if (src) {
        el.addEventListener('load', onLoad);
        const url = new URL(src, window.location.href);
        url.searchParams.set('lang', currentLang());
        url.searchParams.set('theme', currentTheme());
        el.src = url.pathname + url.search;
      }
      const toc = document.getElementById('toc-list');
      if (toc) {
        toc.addEventListener('click', (event) => {
          const a = event.target.closest('a[data-section]');
          if (!a) return;
          event.preventDefault();
          scrollTo(a.getAttribute('data-section'));
        });
      }
      if (window.location.hash.length > 1) {
        let id = window.location.hash.slice(1);
        try {
          id = decodeURIComponent(id);
        } catch (e) {
          // A malformed escape: use the raw fragment.
        }
        scrollTo(id);
      }
    }

    return { post, start };
  })();

  // ---- a report published while the home page is open -------------------------------------

  // The home page shows it in place, without a reload: the page is fetched again (rendered
  // once on the server for every reader) and its report sections replace these, then take
  // the reader's language.
  let refreshing = null;
  let again = false;
  function showNewReports() {
    if (!document.body.classList.contains('home-page')) return;
    if (refreshing) {
      // Announced while fetching: fetch once more when this one is done.
      again = true;
      return;
    }
    refreshing = fetch('/', { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, 'text/html');
        const dashboard = document.getElementById('market-dashboard');
        for (const selector of ['section.latest', 'section.recent']) {
          const next = fresh.querySelector(selector);
          const current = document.querySelector(selector);
          if (!next) continue;
          if (current) current.replaceWith(document.adoptNode(next));
          else if (dashboard) dashboard.before(document.adoptNode(next));
        }
        applyLanguage(currentLang());
      })
      .catch(() => {})
      .finally(() => {
        refreshing = null;
        if (again) {
          again = false;
          showNewReports();
        }
      });
  }

  // ---- wiring --------------------------------------------------------------------------

  function start() {
    // An age was written when the page was rendered (and cached): say it as of now.
    document.querySelectorAll('time[datetime][data-format="age"]').forEach((el) => {
      const date = new Date(el.getAttribute('datetime'));
      if (!Number.isNaN(date.getTime())) el.textContent = formatAge(date, currentLang());
    });
    const themeButton = document.getElementById('theme-toggle');
    if (themeButton) {
      themeButton.addEventListener('click', () => applyTheme(currentTheme() === 'dark' ? 'light' : 'dark'));
    }
    const langToggle = document.getElementById('lang-toggle');
    if (langToggle) {
      langToggle.addEventListener('click', (event) => {
        event.preventDefault();
        applyLanguage(currentLang() === 'vi' ? 'en' : 'vi');
      });
    }
    frame.start();
    document.addEventListener('cr:report-published', showNewReports);
  }

  window.crSite = { currentLang, currentTheme, formatDate };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
