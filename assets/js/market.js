// The live market dashboard: the full view on the home page (#market-mount) and compact cards
// on report pages (#market-cards). Kept current over /ws, with jittered reconnects and HTTP
// polling while the socket is down. Every chart is a small hand-drawn SVG.
(function () {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const TIME_ZONE = 'Asia/Ho_Chi_Minh';
  const POLL_MS = 30000;
  const PING_MS = 25000;
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const FIRST_DATA_MS = 4000;

  const COINS = [
    ['btc', 'Bitcoin'], ['eth', 'Ethereum'], ['sol', 'Solana'], ['bnb', 'BNB'],
    ['xrp', 'XRP'], ['ada', 'Cardano'], ['link', 'Chainlink'],
  ];
  const INDICES = [['DIA', 'Dow Jones'], ['SPY', 'S&P 500'], ['QQQM', 'Nasdaq-100']];

  const TEXT = {
    vi: {
      demo_badge: 'Dữ liệu demo',
      demo_note: 'Giá mô phỏng, không phải dữ liệu thị trường thật.',
      status_connecting: 'Đang kết nối…',
      status_live: 'Trực tiếp',
      status_reconnecting: 'Đang kết nối lại…',
      status_polling: 'Cập nhật định kỳ',
      updated: 'Cập nhật',
      loading: 'Đang tải dữ liệu thị trường…',
      unavailable: 'không có dữ liệu',
      stale: 'cũ',
      stale_title: 'Dữ liệu cũ, nguồn đang gián đoạn',
      fetched: 'lấy lúc',
      partial: 'Một số nguồn dữ liệu đang gián đoạn; giá trị cũ được đánh dấu.',
      market_cap: 'Vốn hoá thị trường',
      volume: 'Khối lượng 24 giờ',
      dominance: 'Tỷ lệ thống trị',
      others: 'Khác',
      fng: 'Chỉ số Sợ hãi & Tham lam',
      fng_short: 'Sợ hãi & Tham lam',
      rsi: 'RSI (14) BTC khung ngày',
      rsi_short: 'RSI BTC',
      oversold: 'Quá bán',
      neutral: 'Trung tính',
      overbought: 'Quá mua',
      coins: 'Tiền mã hoá',
      indices: 'Chỉ số chứng khoán Mỹ',
      spark: 'BTC 24 giờ',
      low: 'Thấp',
      high: 'Cao',
      change_24h: '24 giờ',
      new_report: 'Có báo cáo mới.',
      read_now: 'Đọc ngay',
      'Extreme Fear': 'Sợ hãi tột độ',
      Fear: 'Sợ hãi',
      Neutral: 'Trung lập',
      Greed: 'Tham lam',
      'Extreme Greed': 'Tham lam tột độ',
    },
    en: {
      demo_badge: 'Demo data',
      demo_note: 'Simulated prices, not real market data.',
      status_connecting: 'Connecting…',
      status_live: 'Live',
      status_reconnecting: 'Reconnecting…',
      status_polling: 'Polling',
      updated: 'Updated',
      loading: 'Loading market data…',
      unavailable: 'unavailable',
      stale: 'stale',
      stale_title: 'Stale value: its sources are failing',
      fetched: 'fetched',
      partial: 'Some data sources are failing; stale values are marked.',
      market_cap: 'Market cap',
      volume: '24h volume',
      dominance: 'Dominance',
      others: 'Others',
      fng: 'Fear & Greed Index',
      fng_short: 'Fear & Greed',
      rsi: 'BTC daily RSI (14)',
      rsi_short: 'BTC RSI',
      oversold: 'Oversold',
      neutral: 'Neutral',
      overbought: 'Overbought',
      coins: 'Crypto',
      indices: 'US stock indices',
      spark: 'BTC 24h',
      low: 'Low',
      high: 'High',
      change_24h: '24h',
      new_report: 'A new report is out.',
      read_now: 'Read it',
    },
  };

  const FNG_BANDS = [
    { limit: 25, cls: 'mk-seg-xfear', label: 'Extreme Fear' },
    { limit: 45, cls: 'mk-seg-fear', label: 'Fear' },
    { limit: 55, cls: 'mk-seg-neutral', label: 'Neutral' },
    { limit: 75, cls: 'mk-seg-greed', label: 'Greed' },
    { limit: 100, cls: 'mk-seg-xgreed', label: 'Extreme Greed' },
  ];
  const RSI_BANDS = [
    { limit: 30, cls: 'mk-seg-oversold', label: 'oversold' },
    { limit: 70, cls: 'mk-seg-neutral', label: 'neutral' },
    { limit: 100, cls: 'mk-seg-overbought', label: 'overbought' },
  ];

  const state = { data: null, prev: null, status: 'connecting', report: null };
  const views = [];

  function lang() {
    if (window.crSite && typeof window.crSite.currentLang === 'function') return window.crSite.currentLang();
    return document.documentElement.getAttribute('data-lang') === 'en' ? 'en' : 'vi';
  }

  function t(key) {
    const table = TEXT[lang()];
    return table[key] !== undefined ? table[key] : key;
  }

  // ---- numbers ---------------------------------------------------------------------------

  const formatters = new Map();
  function fmt(value, min, max) {
    const locale = lang() === 'vi' ? 'vi-VN' : 'en-US';
    const key = `${locale}:${min}:${max}`;
    if (!formatters.has(key)) {
      formatters.set(key, new Intl.NumberFormat(locale, { minimumFractionDigits: min, maximumFractionDigits: max }));
    }
    return formatters.get(key).format(value);
  }

  // A finite number, or null: a missing value is never shown as 0.
  function num(v) {
    if (typeof v === 'number') return Number.isFinite(v) ? v : null;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
    return null;
  }

  function usd(text) {
    return lang() === 'vi' ? `${text} USD` : `$${text}`;
  }

  function price(v) {
    const abs = Math.abs(v);
    const digits = abs >= 1 ? 2 : abs >= 0.01 ? 4 : 6;
    return usd(fmt(v, digits, digits));
  }

  const UNITS = {
    vi: [[1e12, ' nghìn tỷ'], [1e9, ' tỷ'], [1e6, ' triệu']],
    en: [[1e12, 'T'], [1e9, 'B'], [1e6, 'M']],
  };

  // 2.89e12 -> "2,89 nghìn tỷ USD" or "$2.89T".
  function bigUsd(v) {
    for (const [size, unit] of UNITS[lang()]) {
      if (Math.abs(v) >= size) {
        const text = fmt(v / size, 0, 2) + unit;
        return lang() === 'vi' ? `${text} USD` : `$${text}`;
      }
    }
    return usd(fmt(v, 0, 0));
  }

  function percent(v, signed) {
    const sign = signed && v > 0 ? '+' : v < 0 ? '−' : '';
    return `${sign}${fmt(Math.abs(v), 2, 2)}%`;
  }

  function clamp(v, lo, hi) {
    return Math.min(hi, Math.max(lo, v));
  }

  // ---- time ------------------------------------------------------------------------------

  function toDate(v) {
    if (typeof v === 'number' && Number.isFinite(v)) return new Date(v < 1e12 ? v * 1000 : v);
    if (typeof v === 'string' && v) {
      const d = new Date(v);
      return Number.isNaN(d.getTime()) ? null : d;
    }
    return null;
  }

  // "14:05:09 25/11/2026 (UTC+7)" / "Nov 25, 2026, 14:05:09 (UTC+7)"
  function dateTime(date) {
    const parts = {};
    new Intl.DateTimeFormat('en-GB', {
      timeZone: TIME_ZONE, year: 'numeric', month: 'numeric', day: 'numeric',
      hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    }).formatToParts(date).forEach((p) => { parts[p.type] = p.value; });
    const pad = (n) => String(n).padStart(2, '0');
    const time = `${parts.hour}:${parts.minute}:${parts.second}`;
    if (lang() === 'vi') return `${time} ${pad(parts.day)}/${pad(parts.month)}/${parts.year} (UTC+7)`;
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    return `${months[Number(parts.month) - 1]} ${Number(parts.day)}, ${parts.year}, ${time} (UTC+7)`;
  }

  // ---- DOM helpers -----------------------------------------------------------------------

  function append(el, children) {
    children.forEach((c) => {
      if (c === null || c === undefined || c === false) return;
      el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return el;
  }

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v !== null && v !== undefined && v !== false) el.setAttribute(k, String(v));
    });
    return append(el, children);
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v !== null && v !== undefined) el.setAttribute(k, String(v));
    });
    return append(el, children);
  }

  // ---- freshness -------------------------------------------------------------------------

  const GROUPS = {
    prices: ['prices', 'coins', 'coin_prices'],
    global: ['global', 'market', 'global_metrics'],
    fng: ['fng', 'fear_greed', 'fear_and_greed'],
    rsi: ['rsi', 'btc_rsi'],
    indices: ['indices', 'us_stock_indices', 'stocks'],
  };

  function freshness(keys) {
    const f = state.data && state.data.freshness;
    if (!f || typeof f !== 'object') return null;
    for (const k of keys) {
      if (f[k] && typeof f[k] === 'object') return f[k];
    }
    return null;
  }

  function staleMark(field, group) {
    const keys = [field].concat(GROUPS[group] || []);
    const info = freshness(keys);
    if (!info || info.stale !== true) return null;
    const at = toDate(info.fetched_at || info.updated_at || info.at || info.time);
    const title = at ? `${t('stale_title')} (${t('fetched')} ${dateTime(at)})` : t('stale_title');
    return h('span', { class: 'mk-stale', title, 'aria-label': title }, t('stale'));
  }

  // ---- value pieces ----------------------------------------------------------------------

  function missing() {
    return h('span', { class: 'mk-na', title: t('unavailable'), 'aria-label': t('unavailable') }, '—');
  }

  function value(field, v, format) {
    const n = num(v);
    if (n === null) return h('span', { class: 'mk-value', 'data-field': field }, missing());
    let cls = 'mk-value';
    const before = state.prev ? num(state.prev[field]) : null;
    if (before !== null && before !== n) cls += n > before ? ' mk-tick-up' : ' mk-tick-down';
    return h('span', { class: cls, 'data-field': field }, format(n));
  }

  function change(field, v) {
    const n = num(v);
    if (n === null) return h('span', { class: 'mk-chg mk-flat', 'data-field': field }, missing());
    const dir = n > 0 ? 'up' : n < 0 ? 'down' : 'flat';
    const arrow = dir === 'up' ? '▲ ' : dir === 'down' ? '▼ ' : '';
    return h('span', { class: `mk-chg mk-${dir}`, 'data-field': field }, arrow + percent(n, true));
  }

  function band(bands, v) {
    return bands.find((b) => v <= b.limit) || bands[bands.length - 1];
  }

  function fngLabel(d, v) {
    const raw = d.fng_classification || d.fng_value_classification || d.fng_label;
    const english = typeof raw === 'string' && raw ? raw : v === null ? null : band(FNG_BANDS, v).label;
    if (!english) return null;
    const vi = TEXT.vi[english];
    return lang() === 'vi' && vi ? vi : english;
  }

  function rsiLabel(v) {
    return v === null ? null : t(band(RSI_BANDS, v).label);
  }

  // ---- SVG charts ------------------------------------------------------------------------

  function polar(cx, cy, r, deg) {
    const a = (deg * Math.PI) / 180;
    return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
  }

  function arc(cx, cy, r, from, to) {
    const [x0, y0] = polar(cx, cy, r, from);
    const [x1, y1] = polar(cx, cy, r, to);
    const large = to - from > 180 ? 1 : 0;
    return `M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${r} ${r} 0 ${large} 1 ${x1.toFixed(2)} ${y1.toFixed(2)}`;
  }

  // A 240° gauge: coloured bands, ticks at the band limits, a needle and the value.
  function gauge(v, bands, ariaLabel) {
    const cx = 100; const cy = 104; const r = 70; const start = 150; const sweep = 240;
    const angle = (x) => start + (sweep * clamp(x, 0, 100)) / 100;
    const svg = s('svg', { viewBox: '0 0 200 156', class: 'mk-gauge', role: 'img', 'aria-label': ariaLabel });
    const current = v === null ? null : band(bands, v);
    let from = 0;
    bands.forEach((b) => {
      const cls = `mk-arc ${b.cls}${current && current !== b ? ' mk-dim' : ''}${v === null ? ' mk-dim' : ''}`;
      svg.appendChild(s('path', { d: arc(cx, cy, r, angle(from) + 0.8, angle(b.limit) - 0.8), class: cls }));
      if (b.limit < 100) {
        const [x0, y0] = polar(cx, cy, r - 14, angle(b.limit));
        const [x1, y1] = polar(cx, cy, r + 14, angle(b.limit));
        const [tx, ty] = polar(cx, cy, r + 22, angle(b.limit));
        svg.appendChild(s('line', { x1: x0, y1: y0, x2: x1, y2: y1, class: 'mk-tick' }));
        svg.appendChild(s('text', { x: tx, y: ty + 4, class: 'mk-tick-label', 'text-anchor': 'middle' }, String(b.limit)));
      }
      from = b.limit;
    });
    if (v !== null) {
      const [nx, ny] = polar(cx, cy, r - 20, angle(v));
      svg.appendChild(s('line', { x1: cx, y1: cy, x2: nx.toFixed(2), y2: ny.toFixed(2), class: 'mk-needle' }));
    }
    svg.appendChild(s('circle', { cx, cy, r: 6, class: 'mk-hub' }));
    svg.appendChild(s('text', { x: cx, y: cy + 42, class: 'mk-gauge-value', 'text-anchor': 'middle' },
      v === null ? '—' : fmt(v, 0, 0)));
    return svg;
  }

  // Stroke-dash slices on one circle, starting at twelve o'clock.
  function doughnut(slices, center, ariaLabel) {
    const r = 40; const c = 2 * Math.PI * r;
    const svg = s('svg', { viewBox: '0 0 100 100', class: 'mk-doughnut', role: 'img', 'aria-label': ariaLabel });
    svg.appendChild(s('circle', { cx: 50, cy: 50, r, class: 'mk-ring' }));
    let offset = 0;
    slices.forEach((slice) => {
      const len = (c * clamp(slice.value, 0, 100)) / 100;
      if (len <= 0) return;
      svg.appendChild(s('circle', {
        cx: 50, cy: 50, r, class: `mk-slice ${slice.cls}`,
        'stroke-dasharray': `${len.toFixed(3)} ${(c - len).toFixed(3)}`,
        'stroke-dashoffset': (-offset).toFixed(3),
        transform: 'rotate(-90 50 50)',
      }));
      offset += len;
    });
    svg.appendChild(s('text', { x: 50, y: 47, class: 'mk-doughnut-label', 'text-anchor': 'middle' }, center[0]));
    svg.appendChild(s('text', { x: 50, y: 62, class: 'mk-doughnut-value', 'text-anchor': 'middle' }, center[1]));
    return svg;
  }

  function sparkSeries(raw) {
    let list = raw;
    if (list && !Array.isArray(list) && typeof list === 'object') list = list.prices || list.points || list.values;
    if (!Array.isArray(list)) return [];
    return list.map((p) => {
      if (Array.isArray(p)) return num(p[p.length - 1]);
      if (p && typeof p === 'object') return num(p.price !== undefined ? p.price : p.value !== undefined ? p.value : p.p);
      return num(p);
    }).filter((v) => v !== null);
  }

  function sparkline(values, ariaLabel) {
    const w = 300; const hgt = 64; const pad = 3;
    const lo = Math.min(...values); const hi = Math.max(...values);
    const span = hi - lo || 1;
    const pts = values.map((v, i) => [
      (i * w) / (values.length - 1),
      pad + ((hi - v) * (hgt - 2 * pad)) / span,
    ]);
    const line = pts.map(([x, y], i) => `${i ? 'L' : 'M'} ${x.toFixed(1)} ${y.toFixed(1)}`).join(' ');
    const up = values[values.length - 1] >= values[0];
    const svg = s('svg', {
      viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': ariaLabel,
      class: `mk-spark ${up ? 'mk-spark-up' : 'mk-spark-down'}`,
    });
    svg.appendChild(s('path', { d: `${line} L ${w} ${hgt} L 0 ${hgt} Z`, class: 'mk-spark-area' }));
    svg.appendChild(s('path', { d: line, class: 'mk-spark-line', 'vector-effect': 'non-scaling-stroke' }));
    return svg;
  }

  // ---- cards -----------------------------------------------------------------------------

  function card(cls, title, ...body) {
    return h('article', { class: `mk-card ${cls}` }, h('h3', { class: 'mk-card-title' }, ...title), ...body);
  }

  function btcCard(d) {
    const values = sparkSeries(d.btc_sparkline);
    const chart = values.length >= 2
      ? h('figure', { class: 'mk-spark-wrap' },
        sparkline(values, `${t('spark')}: ${price(values[0])} → ${price(values[values.length - 1])}`),
        h('figcaption', { class: 'mk-spark-caption' },
          h('span', null, t('spark')),
          h('span', null, `${t('low')} ${price(Math.min(...values))} · ${t('high')} ${price(Math.max(...values))}`)))
      : h('p', { class: 'mk-spark-wrap mk-spark-empty' }, `${t('spark')}: `, missing());
    return card('mk-btc', ['Bitcoin ', h('span', { class: 'mk-sym' }, 'BTC'), staleMark('btc_price_usd', 'prices')],
      h('p', { class: 'mk-big' }, value('btc_price_usd', d.btc_price_usd, price)),
      h('p', { class: 'mk-sub' }, change('btc_change_24h', d.btc_change_24h), ' ', h('span', { class: 'mk-muted' }, t('change_24h'))),
      chart);
  }

  function globalCard(d) {
    return card('mk-global', [t('market_cap'), staleMark('market_cap_usd', 'global')],
      h('p', { class: 'mk-big' }, value('market_cap_usd', d.market_cap_usd, bigUsd)),
      h('p', { class: 'mk-sub' }, change('market_cap_change_percentage_24h_usd', d.market_cap_change_percentage_24h_usd),
        ' ', h('span', { class: 'mk-muted' }, t('change_24h'))),
      h('h3', { class: 'mk-card-title mk-second' }, t('volume'), staleMark('volume_24h_usd', 'global')),
      h('p', { class: 'mk-big mk-big-2' }, value('volume_24h_usd', d.volume_24h_usd, bigUsd)));
  }

  function dominanceCard(d) {
    const btc = num(d.btc_market_cap_percentage);
    const eth = num(d.eth_market_cap_percentage);
    const known = btc !== null && eth !== null;
    const slices = known
      ? [{ value: btc, cls: 'mk-c-btc' }, { value: eth, cls: 'mk-c-eth' }, { value: Math.max(0, 100 - btc - eth), cls: 'mk-c-other' }]
      : [];
    const label = known ? `BTC ${percent(btc)}, ETH ${percent(eth)}` : t('unavailable');
    const row = (cls, name, field, v) => h('li', null, h('span', { class: `mk-key ${cls}`, 'aria-hidden': 'true' }), `${name} `,
      value(field, v, (n) => percent(n)));
    return card('mk-dominance', [t('dominance'), staleMark('btc_market_cap_percentage', 'global')],
      h('div', { class: 'mk-dom-body' },
        doughnut(slices, ['BTC', btc === null ? '—' : percent(btc)], `${t('dominance')}: ${label}`),
        h('ul', { class: 'mk-legend' },
          row('mk-c-btc', 'BTC', 'btc_market_cap_percentage', btc),
          row('mk-c-eth', 'ETH', 'eth_market_cap_percentage', eth),
          h('li', null, h('span', { class: 'mk-key mk-c-other', 'aria-hidden': 'true' }), `${t('others')} `,
            known ? percent(Math.max(0, 100 - btc - eth)) : missing()))));
  }

  function gaugeCard(cls, title, stale, v, bands, label) {
    const text = v === null ? t('unavailable') : `${fmt(v, 0, 1)}${label ? `, ${label}` : ''}`;
    return card(cls, [title, stale],
      gauge(v, bands, `${title}: ${text}`),
      h('p', { class: 'mk-gauge-label' }, label || missing()));
  }

  function fngCard(d) {
    const v = num(d.fng_value);
    return gaugeCard('mk-fng', t('fng'), staleMark('fng_value', 'fng'), v === null ? null : clamp(v, 0, 100),
      FNG_BANDS, fngLabel(d, v));
  }

  function rsiValue(d) {
    const v = num(d.rsi_14);
    return v !== null ? v : num(d.btc_rsi_14);
  }

  function rsiCard(d) {
    const v = rsiValue(d);
    return gaugeCard('mk-rsi', t('rsi'), staleMark('rsi_14', 'rsi'), v === null ? null : clamp(v, 0, 100),
      RSI_BANDS, rsiLabel(v));
  }

  function coinsCard(d) {
    const rows = COINS.slice(1).map(([sym, name]) => h('tr', null,
      h('th', { scope: 'row' }, h('span', { class: 'mk-sym' }, sym.toUpperCase()), ' ', h('span', { class: 'mk-muted mk-name' }, name),
        staleMark(`${sym}_price_usd`, 'prices')),
      h('td', null, value(`${sym}_price_usd`, d[`${sym}_price_usd`], price)),
      h('td', null, change(`${sym}_change_24h`, d[`${sym}_change_24h`]))));
    return card('mk-coins', [t('coins')], h('table', { class: 'mk-table' }, h('tbody', null, ...rows)));
  }

  function indexOf(d, sym) {
    const all = d.us_stock_indices;
    const row = all && typeof all === 'object' ? all[sym] : null;
    return row && typeof row === 'object' ? row : {};
  }

  function indicesCard(d) {
    const rows = INDICES.map(([sym, short]) => {
      const q = indexOf(d, sym);
      const full = typeof q.name === 'string' && q.name ? q.name : null;
      return h('tr', null,
        h('th', { scope: 'row', title: full }, h('span', { class: 'mk-sym' }, sym), ' ', h('span', { class: 'mk-muted mk-name' }, short),
          staleMark(`us_stock_indices.${sym}`, 'indices')),
        h('td', null, value(`${sym.toLowerCase()}_price`, q.price, price)),
        h('td', null, change(`${sym.toLowerCase()}_change_percent`, q.change_percent)));
    });
    return card('mk-indices', [t('indices')], h('table', { class: 'mk-table' }, h('tbody', null, ...rows)));
  }

  // ---- compact cards (report pages) ------------------------------------------------------

  function mini(label, main, sub, stale) {
    return h('div', { class: 'mk-mini' },
      h('span', { class: 'mk-mini-label' }, label, stale),
      h('span', { class: 'mk-mini-value' }, main),
      sub ? h('span', { class: 'mk-mini-sub' }, sub) : null);
  }

  function compactGrid(d) {
    const fng = num(d.fng_value);
    const rsi = rsiValue(d);
    const band2 = (v, bands) => (v === null ? '' : ` mk-zone ${band(bands, v).cls}`);
    return h('div', { class: 'mk-minis' },
      ...COINS.map(([sym]) => mini(sym.toUpperCase(), value(`${sym}_price_usd`, d[`${sym}_price_usd`], price),
        change(`${sym}_change_24h`, d[`${sym}_change_24h`]), staleMark(`${sym}_price_usd`, 'prices'))),
      mini(t('market_cap'), value('market_cap_usd', d.market_cap_usd, bigUsd),
        change('market_cap_change_percentage_24h_usd', d.market_cap_change_percentage_24h_usd), staleMark('market_cap_usd', 'global')),
      mini(t('volume'), value('volume_24h_usd', d.volume_24h_usd, bigUsd), null, staleMark('volume_24h_usd', 'global')),
      mini(t('dominance'), value('btc_market_cap_percentage', d.btc_market_cap_percentage, (n) => `BTC ${percent(n)}`),
        value('eth_market_cap_percentage', d.eth_market_cap_percentage, (n) => `ETH ${percent(n)}`), null),
      mini(t('fng_short'), value('fng_value', fng, (n) => fmt(n, 0, 0)),
        h('span', { class: `mk-zone-text${band2(fng, FNG_BANDS)}` }, fngLabel(d, fng) || ''), staleMark('fng_value', 'fng')),
      mini(t('rsi_short'), value('rsi_14', rsi, (n) => fmt(n, 0, 1)),
        h('span', { class: `mk-zone-text${band2(rsi, RSI_BANDS)}` }, rsiLabel(rsi) || ''), staleMark('rsi_14', 'rsi')),
      ...INDICES.map(([sym]) => {
        const q = indexOf(d, sym);
        return mini(sym, value(`${sym.toLowerCase()}_price`, q.price, price),
          change(`${sym.toLowerCase()}_change_percent`, q.change_percent), staleMark(`us_stock_indices.${sym}`, 'indices'));
      }));
  }

  // ---- frame -----------------------------------------------------------------------------

  function statusBar(d) {
    const status = state.status;
    const updated = d ? toDate(d.last_updated) : null;
    return h('div', { class: 'mk-bar' },
      d && d.demo === true
        ? h('span', { class: 'mk-demo', title: t('demo_note') }, h('strong', null, t('demo_badge')), h('span', { class: 'mk-demo-note' }, t('demo_note')))
        : null,
      h('span', { class: `mk-status mk-status-${status}`, 'data-status': status },
        h('span', { class: 'mk-dot', 'aria-hidden': 'true' }), t(`status_${status}`)),
      updated
        ? h('span', { class: 'mk-updated' }, `${t('updated')}: `, h('time', { datetime: updated.toISOString() }, dateTime(updated)))
        : null,
      d && d.partial_failure === true ? h('span', { class: 'mk-partial' }, t('partial')) : null,
      state.report
        ? h('span', { class: 'mk-new-report' }, `${t('new_report')} `,
          h('a', { href: `/crypto_report/${state.report.id}` }, t('read_now')))
        : null);
  }

  function build(compact) {
    const d = state.data;
    const root = h('div', { class: compact ? 'mk mk-compact' : 'mk', lang: lang() }, statusBar(d));
    if (!d) {
      root.appendChild(h('p', { class: 'mk-loading' }, t('loading')));
      return root;
    }
    if (compact) {
      root.appendChild(compactGrid(d));
    } else {
      root.appendChild(h('div', { class: 'mk-grid' },
        btcCard(d), globalCard(d), dominanceCard(d), fngCard(d), rsiCard(d), coinsCard(d), indicesCard(d)));
    }
    return root;
  }

  function render() {
    views.forEach((view) => {
      // The report page shows its cards only once there is something to show.
      if (view.compact && !state.data) return;
      view.el.replaceChildren(build(view.compact));
    });
  }

  function setData(data) {
    if (!data || typeof data !== 'object') return;
    state.prev = state.data;
    state.data = data;
    render();
    // Only the render that follows new data flashes the values that moved.
    state.prev = null;
  }

  function isPlainObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  // A `dashboard_update` carries only what changed since the previous snapshot: objects merge
  // member by member, anything else (numbers, strings, null, arrays) replaces the old value.
  // Returns a new object, so the previous state stays intact for the values-that-moved flash.
  function merge(base, patch) {
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
    const full = document.getElementById('market-mount');
    const cards = document.getElementById('market-cards');
    if (full) views.push({ el: full, compact: false });
    if (cards) views.push({ el: cards, compact: true });
    if (!views.length) return;
    document.addEventListener('cr:language', render);
    render();
    transport.start(full ? full.closest('[data-socket]') || full : cards);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
