// The live market dashboard: the full view on the home page (#market-mount) and compact cards
// on report pages (#market-cards). Kept current over /ws, with jittered reconnects and HTTP
// polling while the socket is down; js/market-view.js describes what to show.
//
// Each description is merged into the page in place (`morph`): a tick changes the text of the
// values that moved and nothing else, so a selection, a screen reader's position and the focus
// survive it. Nothing is announced (no live region): the reader reads the numbers when they
// choose to.
(function () {
  'use strict';

  const POLL_MS = 30000;
  // During an outage nothing new arrives: the bar is redrawn now and then so it can say that
  // the values are delayed.
  const RECHECK_MS = 15000;
  const PING_MS = 25000;
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const FIRST_DATA_MS = 4000;
  const HEALTH_MS = 60000;
  const HEALTH_SOON_MS = 5000;

  // tick: bumped on every snapshot, so a value that moves again flashes again.
  const state = { data: null, prev: null, status: 'connecting', report: null, health: null, tick: 0 };
  const views = [];
  const describe = window.crMarketView;

  // ---- in-place update -------------------------------------------------------------------

  let held = false; // some text was left as it was because the reader has it selected

  function selectedRange() {
    const sel = document.getSelection ? document.getSelection() : null;
    return sel && sel.rangeCount > 0 && !sel.isCollapsed ? sel.getRangeAt(0) : null;
  }

  // Values that moved again while still flashing: their animation restarts once the whole
  // tree is merged, all together (asking one element for its animations recomputes the page's
  // style; asking the document once does it once).
  let restarts = [];

  function restartFlashes() {
    if (!restarts.length) return;
    const moved = new Set(restarts);
    restarts = [];
    if (typeof document.getAnimations !== 'function') return;
    document.getAnimations().forEach((a) => {
      if (a.effect && moved.has(a.effect.target)) {
        a.cancel();
        a.play();
      }
    });
  }

  // Makes `from` (in the page) look like `to` (freshly built), reusing every node whose kind
  // matches. Text the reader has selected is not rewritten until the selection goes.
  function morph(from, to, range) {
    if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName || from.namespaceURI !== to.namespaceURI) {
      from.replaceWith(to);
      return;
    }
    if (from.nodeType === Node.TEXT_NODE) {
      if (from.data !== to.data) {
        if (range && range.intersectsNode(from)) held = true;
        else from.data = to.data;
      }
      return;
    }
    if (from.nodeType !== Node.ELEMENT_NODE) return;
    const restart = to.hasAttribute('data-tick') && from.getAttribute('data-tick') !== to.getAttribute('data-tick');
    for (const attr of Array.from(from.attributes)) {
      if (!to.hasAttribute(attr.name)) from.removeAttribute(attr.name);
    }
    for (const attr of Array.from(to.attributes)) {
      if (from.getAttribute(attr.name) !== attr.value) from.setAttribute(attr.name, attr.value);
    }
    if (restart) restarts.push(from);
    const next = Array.from(to.childNodes);
    const current = Array.from(from.childNodes);
    next.forEach((child, i) => {
      if (i < current.length) morph(current[i], child, range);
      else from.appendChild(child);
    });
    for (let i = next.length; i < current.length; i += 1) current[i].remove();
  }

  function render() {
    const range = selectedRange();
    held = false;
    views.forEach((v) => {
      const next = describe.build(state, v.compact);
      const current = v.el.firstElementChild;
      if (!current) v.el.appendChild(next);
      else if (v.filled || (range && range.intersectsNode(v.el)) || v.el.contains(document.activeElement)) morph(current, next, range);
      // The first data replaces the empty frame whole: nothing in it is selected or focused,
      // and merging every node of a frame that changes everywhere costs more than drawing anew.
      else current.replaceWith(next);
      v.filled = Boolean(state.data);
    });
    restartFlashes();
  }

  document.addEventListener('selectionchange', () => {
    if (held && !selectedRange()) render();
  });

  function setData(data) {
    if (!data || typeof data !== 'object') return;
    state.prev = state.data;
    state.data = data;
    state.tick += 1;
    render();
    // Other parts of the page that compare with the market now (js/since.js).
    document.dispatchEvent(new CustomEvent('cr:market', { detail: data }));
    // Only the render that follows new data flashes the values that moved.
    state.prev = null;
    if (describe.troubled(data)) health.check();
  }

  function isPlainObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  // A `dashboard_update` carries only what changed since the previous snapshot: objects merge
  // member by member, anything else (numbers, strings, null, arrays) replaces the old value.
  // Returns a new object, so the previous state stays intact for the values-that-moved flash.
  // An update merged into the snapshot before it. An array may come as a splice of the older
  // one, {"$splice": [drop, keep, tail]}: base[drop .. drop + keep] followed by tail.
  function merge(base, patch) {
    if (Array.isArray(base) && isPlainObject(patch) && Array.isArray(patch.$splice)) {
      const [drop, keep, tail] = patch.$splice;
      return base.slice(drop, drop + keep).concat(tail);
    }
    if (!isPlainObject(base) || !isPlainObject(patch)) return patch;
    const out = { ...base };
    Object.keys(patch).forEach((key) => {
      out[key] = merge(base[key], patch[key]);
    });
    return out;
  }

  function setStatus(status) {
    if (state.status === status) return;
    state.status = status;
    render();
  }

  // Which providers fail and since when: /health knows, asked only while something is
  // missing or stale: every few seconds until it names the failing providers (the first
  // attempts may still be running), then once a minute.
  const health = (() => {
    let last = 0;
    let busy = false;
    let timer = 0;
    const gap = () => (state.health && describe.explained(state) ? HEALTH_MS : HEALTH_SOON_MS);

    function schedule() {
      window.clearTimeout(timer);
      if (state.data && describe.troubled(state.data)) timer = window.setTimeout(check, gap());
    }

    async function check() {
      if (busy || Date.now() - last < gap()) return;
      busy = true;
      last = Date.now();
      try {
        const res = await fetch('/health', { headers: { Accept: 'application/json' }, cache: 'no-store' });
        const body = await res.json();
        if (body && typeof body === 'object') {
          state.health = body;
          render();
        }
      } catch (e) {
        // Without the details the bar still names the groups and their last good values.
      } finally {
        busy = false;
        schedule();
      }
    }
    return { check };
  })();

  // ---- transport -------------------------------------------------------------------------

  const transport = (() => {
    let endpoint = '/api/crypto/dashboard-summary';
    let socketUrl = null;
    let ws = null;
    let attempt = 0;
    let reconnectTimer = null;
    let pingTimer = null;
    let pollTimer = null;

    function unwrap(json) {
      if (json && typeof json === 'object' && json.data && typeof json.data === 'object' && !('btc_price_usd' in json)) {
        return json.data;
      }
      return json;
    }

    async function poll() {
      if (document.hidden && state.data) return;
      try {
        const res = await fetch(endpoint, { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        setData(unwrap(await res.json()));
        if (!ws || ws.readyState !== WebSocket.OPEN) setStatus('polling');
      } catch (e) {
        if (!ws || ws.readyState !== WebSocket.OPEN) setStatus('reconnecting');
      }
    }

    function startPolling() {
      if (pollTimer) return;
      poll();
      pollTimer = window.setInterval(poll, POLL_MS);
    }

    function stopPolling() {
      if (pollTimer) window.clearInterval(pollTimer);
      pollTimer = null;
    }

    function onMessage(event) {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      switch (msg.type) {
        case 'dashboard_data':
          setData(msg.data);
          break;
        case 'dashboard_update':
          if (state.data) setData(merge(state.data, msg.data));
          break;
        case 'report_published':
          if (msg.data && Number.isSafeInteger(Number(msg.data.id))) {
            state.report = { id: Number(msg.data.id) };
            render();
            // The page may show the new report in place (the home page does).
            document.dispatchEvent(new CustomEvent('cr:report-published', { detail: state.report }));
          }
          break;
        default:
          break;
      }
    }

    function scheduleReconnect() {
      if (reconnectTimer) return;
      // Exponential backoff with "equal jitter": half fixed, half random, capped.
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 10));
      const delay = ceiling / 2 + Math.random() * (ceiling / 2);
      attempt += 1;
      reconnectTimer = window.setTimeout(() => {
        reconnectTimer = null;
        connect();
      }, delay);
    }

    function connect() {
      if (!socketUrl || !('WebSocket' in window)) {
        startPolling();
        return;
      }
      let socket;
      try {
        socket = new WebSocket(socketUrl);
      } catch (e) {
        startPolling();
        scheduleReconnect();
        return;
      }
      ws = socket;
      socket.addEventListener('open', () => {
        attempt = 0;
        stopPolling();
        setStatus('live');
        pingTimer = window.setInterval(() => {
          if (socket.readyState === WebSocket.OPEN) socket.send('{"type":"ping"}');
        }, PING_MS);
      });
      socket.addEventListener('message', onMessage);
      socket.addEventListener('close', () => {
        if (ws !== socket) return;
        ws = null;
        if (pingTimer) window.clearInterval(pingTimer);
        pingTimer = null;
        setStatus(pollTimer && state.data ? 'polling' : 'reconnecting');
        startPolling();
        scheduleReconnect();
      });
    }

    function start(el) {
      endpoint = el.getAttribute('data-endpoint') || endpoint;
      const path = el.getAttribute('data-socket');
      if (path) {
        const url = new URL(path, window.location.href);
        url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
        // Version 2: this script merges arrays sent as splices (see merge).
        url.searchParams.set('v', '2');
        socketUrl = url.href;
      }
      connect();
      // A socket that opens but stays mute (or never opens) must not leave the page empty.
      window.setTimeout(() => {
        if (!state.data) poll();
      }, FIRST_DATA_MS);
      window.addEventListener('online', () => {
        if (!ws && reconnectTimer) {
          window.clearTimeout(reconnectTimer);
          reconnectTimer = null;
          connect();
        }
      });
    }

    return { start };
  })();

  // ---- wiring ----------------------------------------------------------------------------

  function start() {
    if (!describe) return; // the view script failed to load: leave the reserved space empty
    const full = document.getElementById('market-mount');
    const cards = document.getElementById('market-cards');
    if (full) views.push({ el: full, compact: false });
    if (cards) views.push({ el: cards, compact: true });
    if (!views.length) return;
    document.addEventListener('cr:language', render);
    // The frame is drawn at once (no data yet): the page keeps its layout when data comes.
    render();
    window.setInterval(() => {
      if (state.data && !document.hidden) render();
    }, RECHECK_MS);
    transport.start(full ? full.closest('[data-socket]') || full : cards);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
