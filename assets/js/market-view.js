// The market dashboard's view (loaded before js/market.js): numbers and times in the reader's
// language, the hand-drawn SVG charts, and the cards, built as a fresh DOM description of one
// state. js/market.js merges each description into the page in place.
(function () {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';

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
      status_nodata: 'Chưa có dữ liệu thị trường',
      status_delayed: 'Trễ từ',
      updated: 'Cập nhật',
      unavailable: 'không có dữ liệu',
      never: 'chưa từng lấy được',
      stale: 'cũ',
      as_of: 'giá trị lúc',
      failing: 'Nguồn đang lỗi',
      failing_since: 'từ',
      market_cap: 'Vốn hoá thị trường',
      volume: 'Khối lượng 24 giờ',
      dominance: 'Tỷ lệ thống trị',
      others: 'Khác',
      fng: 'Chỉ số Sợ hãi & Tham lam',
      fng_short: 'Sợ hãi & Tham lam',
      rsi: 'RSI (14) BTC khung ngày',
      rsi_short: 'RSI BTC',
      oversold: 'Quá bán',
      neutral: 'Trung lập',
      overbought: 'Quá mua',
      coins: 'Tiền mã hoá',
      indices: 'Chỉ số chứng khoán Mỹ',
      spark: 'BTC 24 giờ',
      spark_hours: 'BTC {n} giờ',
      low: 'Thấp',
      high: 'Cao',
      change_24h: '24 giờ',
      new_report: 'Có báo cáo mới.',
      read_now: 'Đọc ngay',
      group_prices: 'Giá coin',
      group_global: 'Vốn hoá và khối lượng',
      group_fng: 'Sợ hãi & Tham lam',
      group_rsi: 'RSI',
      group_indices: 'Chỉ số Mỹ',
      strip: 'Giá và chỉ số thị trường',
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
      status_nodata: 'No market data yet',
      status_delayed: 'Delayed since',
      updated: 'Updated',
      unavailable: 'unavailable',
      never: 'never fetched',
      stale: 'stale',
      as_of: 'value of',
      failing: 'Failing sources',
      failing_since: 'since',
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
      spark_hours: 'BTC {n}h',
      low: 'Low',
      high: 'High',
      change_24h: '24h',
      new_report: 'A new report is out.',
      read_now: 'Read it',
      group_prices: 'Coin prices',
      group_global: 'Market cap and volume',
      group_fng: 'Fear & Greed',
      group_rsi: 'RSI',
      group_indices: 'US indices',
      strip: 'Market prices and indicators',
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

  // Snapshot groups: the field that tells each one's freshness, its /health name, and the
  // providers that serve it (display names).
  const GROUPS = [
    { key: 'prices', field: 'btc_price_usd', health: 'prices' },
    { key: 'global', field: 'market_cap_usd', health: 'global' },
    { key: 'fng', field: 'fng_value', health: 'fng' },
    { key: 'rsi', field: 'rsi_14', health: 'rsi' },
    { key: 'indices', field: 'us_stock_indices.SPY', health: 'us_stock_indices' },
  ];
  const PROVIDER_NAMES = {
    coingecko: 'CoinGecko', coinmarketcap: 'CoinMarketCap', binance: 'Binance', binance_klines: 'Binance',
    'alternative.me': 'alternative.me', taapi: 'TAAPI.IO', finnhub: 'Finnhub',
  };

  // tick: bumped on every snapshot, so a value that moves again flashes again.

  // The state being described (set by `build`): data, prev, tick, status, report, health.
  let state = { data: null };

  function lang() {
    if (window.crSite && typeof window.crSite.currentLang === 'function') return window.crSite.currentLang();
    return document.documentElement.getAttribute('data-lang') === 'en' ? 'en' : 'vi';
  }

  function t(key) {
    const table = TEXT[lang()];
    return table[key] !== undefined ? table[key] : key;
  }

  // ---- numbers ---------------------------------------------------------------------------

  function fmt(value, min, max) {
    return window.crNumbers.fixed(value, min, max, lang());
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
      if (Math.abs(v) >= size) return usd(fmt(v / size, 0, 2) + unit);
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

  const pad = (n) => String(n).padStart(2, '0');

  // The audience's clock, as the server keeps it (src/i18n.rs): UTC+7, no daylight saving.
  // Plain arithmetic: a time-zone formatter costs a tick more than everything else it draws.
  const OFFSET_MS = 7 * 3600 * 1000;
  function parts(date) {
    const local = new Date(date.getTime() + OFFSET_MS);
    return {
      year: String(local.getUTCFullYear()), month: String(local.getUTCMonth() + 1), day: String(local.getUTCDate()),
      hour: pad(local.getUTCHours()), minute: pad(local.getUTCMinutes()), second: pad(local.getUTCSeconds()),
    };
  }

  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  // As the report pages write it: "25/11/2026 14:05:09 (UTC+7)" / "Nov 25, 2026, 14:05:09 (UTC+7)".
  function dateTime(date) {
    const p = parts(date);
    const time = `${p.hour}:${p.minute}:${p.second}`;
    if (lang() === 'vi') return `${pad(p.day)}/${pad(p.month)}/${p.year} ${time} (UTC+7)`;
    return `${MONTHS[Number(p.month) - 1]} ${Number(p.day)}, ${p.year}, ${time} (UTC+7)`;
  }

  // Shorter, for a card: the time alone today, with the date otherwise.
  function shortTime(date) {
    const p = parts(date);
    const today = parts(new Date());
    const time = `${p.hour}:${p.minute}`;
    if (p.day === today.day && p.month === today.month && p.year === today.year) return time;
    return lang() === 'vi' ? `${pad(p.day)}/${pad(p.month)} ${time}` : `${MONTHS[Number(p.month) - 1]} ${Number(p.day)}, ${time}`;
  }

  // ---- DOM helpers -----------------------------------------------------------------------

  function append(el, children) {
    children.forEach((c) => {
      if (c === null || c === undefined || c === false || c === '') return;
      if (Array.isArray(c)) append(el, c);
      else el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
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

  function freshnessOf(field) {
    const f = state.data && state.data.freshness;
    const info = f && typeof f === 'object' ? f[field] : null;
    return info && typeof info === 'object' ? info : null;
  }

  // A value that is stale says so, with the time it was fetched, in words (not only a colour).
  function staleMark(field) {
    const info = freshnessOf(field);
    if (!info || info.stale !== true) return null;
    const at = toDate(info.fetched_at);
    const text = at ? `${t('stale')} · ${t('as_of')} ${shortTime(at)}` : t('stale');
    return h('span', { class: 'mk-stale', title: at ? dateTime(at) : null }, text);
  }

  // The groups without a fresh value, from the snapshot alone (the /health details, when
  // fetched, add which providers fail and since when).
  // Groups the server has no source for (US indices without a key): not shown, not failing.
  function unconfigured(d, key) {
    const list = d && Array.isArray(d.unconfigured) ? d.unconfigured : [];
    return list.includes(key);
  }

  function groupTrouble(d) {
    return GROUPS.filter((g) => !unconfigured(d, g.health)).map((g) => {
      const info = freshnessOf(g.field);
      const value = g.key === 'indices' ? indexOf(d, 'SPY').price : d[g.field];
      if (num(value) === null) return { group: g, kind: 'never' };
      if (info && info.stale === true) return { group: g, kind: 'stale', at: toDate(info.fetched_at) };
      return null;
    }).filter(Boolean);
  }

  function providersOf(groupHealth) {
    const names = [];
    (Array.isArray(groupHealth && groupHealth.errors) ? groupHealth.errors : []).forEach((e) => {
      const id = String(e).split(':')[0].trim().toLowerCase();
      const name = PROVIDER_NAMES[id] || null;
      if (name && !names.includes(name)) names.push(name);
    });
    return names;
  }

  // "Coin prices: CoinGecko, Binance since 04:06".
  function troubleText(trouble) {
    const health = state.health;
    const groups = health && health.market && health.market.groups;
    const started = health && Number.isFinite(health.uptime_seconds)
      ? new Date(Date.now() - health.uptime_seconds * 1000) : null;
    return trouble.map(({ group, kind, at }) => {
      const gh = groups && typeof groups === 'object' ? groups[group.health] : null;
      const label = t(`group_${group.key}`);
      const names = providersOf(gh);
      const since = toDate(gh && gh.last_success) || (kind === 'stale' ? at : started);
      if (!names.length && !since) return `${label}: ${t('unavailable')}`;
      const who = names.length ? ` ${names.join(', ')}` : '';
      return `${label}:${who}${since ? ` ${t('failing_since')} ${shortTime(since)}` : ''}`;
    }).join(' · ');
  }

  // ---- value pieces ----------------------------------------------------------------------

  // "Unavailable" once the server has answered without it; "…" until it has answered.
  function na() {
    return state.data ? t('unavailable') : '…';
  }

  // A dash in tables and strips; the word where a card's headline number would be.
  function missing(word) {
    return word
      ? h('span', { class: 'mk-na mk-na-word' }, na())
      : h('span', { class: 'mk-na', title: t('unavailable') }, '—');
  }

  function value(field, v, format, word) {
    const n = num(v);
    if (n === null) return h('span', { class: 'mk-value', 'data-field': field }, missing(word));
    let cls = 'mk-value';
    let tick = null;
    const before = state.prev ? num(state.prev[field]) : null;
    if (before !== null && before !== n) {
      cls += n > before ? ' mk-tick-up' : ' mk-tick-down';
      tick = state.tick;
    }
    return h('span', { class: cls, 'data-field': field, 'data-tick': tick }, format(n));
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
    // The needle is always drawn (hidden without a value), so a value arriving moves it.
    const [nx, ny] = polar(cx, cy, r - 20, angle(v === null ? 0 : v));
    svg.appendChild(s('line', {
      x1: cx, y1: cy, x2: nx.toFixed(2), y2: ny.toFixed(2), class: v === null ? 'mk-needle mk-hide' : 'mk-needle',
    }));
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

  // [{ at: Date|null, v }], oldest first; points are [unix ms, price] pairs (or bare prices).
  function sparkPoints(raw) {
    let list = raw;
    if (list && !Array.isArray(list) && typeof list === 'object') list = list.prices || list.points || list.values;
    if (!Array.isArray(list)) return [];
    return list.map((p) => {
      if (Array.isArray(p)) return { at: p.length > 1 ? toDate(p[0]) : null, v: num(p[p.length - 1]) };
      if (p && typeof p === 'object') return { at: toDate(p.t), v: num(p.price !== undefined ? p.price : p.value !== undefined ? p.value : p.p) };
      return { at: null, v: num(p) };
    }).filter((p) => p.v !== null);
  }

  function sparkline(values, ariaLabel) {
    const w = 300; const hgt = 64; const pad2 = 3;
    const svg = s('svg', {
      viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': ariaLabel,
      class: 'mk-spark',
    });
    if (values.length < 2) return svg;
    const lo = Math.min(...values); const hi = Math.max(...values);
    const span = hi - lo || 1;
    const pts = values.map((v, i) => [(i * w) / (values.length - 1), pad2 + ((hi - v) * (hgt - 2 * pad2)) / span]);
    const line = pts.map(([x, y], i) => `${i ? 'L' : 'M'} ${x.toFixed(1)} ${y.toFixed(1)}`).join(' ');
    svg.setAttribute('class', `mk-spark ${values[values.length - 1] >= values[0] ? 'mk-spark-up' : 'mk-spark-down'}`);
    svg.appendChild(s('path', { d: `${line} L ${w} ${hgt} L 0 ${hgt} Z`, class: 'mk-spark-area' }));
    svg.appendChild(s('path', { d: line, class: 'mk-spark-line', 'vector-effect': 'non-scaling-stroke' }));
    return svg;
  }

  // ---- cards -----------------------------------------------------------------------------

  // Every card has the same shape with or without data, so data arriving changes text only.
  function card(cls, title, ...body) {
    return h('article', { class: `mk-card ${cls}` }, h('h3', { class: 'mk-card-title' }, ...title), ...body);
  }

  // What the line covers, in words: "BTC 24h" once it spans (nearly) a day, else its hours.
  function sparkTitle(points) {
    const first = points.length ? points[0].at : null;
    const last = points.length ? points[points.length - 1].at : null;
    if (!first || !last) return t('spark');
    const hours = Math.round((last - first) / 3_600_000);
    return hours >= 23 ? t('spark') : t('spark_hours').replace('{n}', String(Math.max(1, hours)));
  }

  function btcCard(d) {
    const points = sparkPoints(d.btc_sparkline);
    const values = points.map((p) => p.v);
    const known = values.length >= 2;
    const title = sparkTitle(points);
    const label = known ? `${title}: ${price(values[0])} → ${price(values[values.length - 1])}` : `${title}: ${na()}`;
    const at = (p) => (p && p.at ? h('time', { datetime: p.at.toISOString() }, shortTime(p.at)) : '');
    // The times under the line keep their row without data, so data arriving moves nothing.
    return card('mk-btc', ['Bitcoin ', h('span', { class: 'mk-sym' }, 'BTC'), staleMark('btc_price_usd')],
      h('p', { class: 'mk-big' }, value('btc_price_usd', d.btc_price_usd, price, true)),
      h('p', { class: 'mk-sub' }, change('btc_change_24h', d.btc_change_24h), ' ', h('span', { class: 'mk-muted' }, t('change_24h'))),
      h('figure', { class: 'mk-spark-wrap' },
        sparkline(values, label),
        h('div', { class: 'mk-spark-axis' },
          h('span', { class: 'mk-spark-from' }, known ? at(points[0]) : '\u00a0'),
          h('span', { class: 'mk-spark-to' }, known ? at(points[points.length - 1]) : '\u00a0')),
        h('figcaption', { class: 'mk-spark-caption' },
          h('span', { class: 'mk-spark-title' }, title),
          h('span', { class: 'mk-spark-range' }, known
            ? `${t('low')} ${price(Math.min(...values))} · ${t('high')} ${price(Math.max(...values))}`
            : na()))));
  }

  function globalCard(d) {
    return card('mk-global', [t('market_cap'), staleMark('market_cap_usd')],
      h('p', { class: 'mk-big' }, value('market_cap_usd', d.market_cap_usd, bigUsd, true)),
      h('p', { class: 'mk-sub' }, change('market_cap_change_percentage_24h_usd', d.market_cap_change_percentage_24h_usd),
        ' ', h('span', { class: 'mk-muted' }, t('change_24h'))),
      h('h3', { class: 'mk-card-title mk-second' }, t('volume')),
      h('p', { class: 'mk-big mk-big-2' }, value('volume_24h_usd', d.volume_24h_usd, bigUsd, true)));
  }

  function dominanceCard(d) {
    const btc = num(d.btc_market_cap_percentage);
    const eth = num(d.eth_market_cap_percentage);
    const known = btc !== null && eth !== null;
    const other = known ? Math.max(0, 100 - btc - eth) : 0;
    const slices = [{ value: known ? btc : 0, cls: 'mk-c-btc' }, { value: known ? eth : 0, cls: 'mk-c-eth' },
      { value: other, cls: 'mk-c-other' }];
    const label = known ? `BTC ${percent(btc)}, ETH ${percent(eth)}` : na();
    const row = (cls, name, field, v) => h('li', null, h('span', { class: `mk-key ${cls}`, 'aria-hidden': 'true' }), `${name} `,
      value(field, v, (n) => percent(n)));
    return card('mk-dominance', [t('dominance'), staleMark('btc_market_cap_percentage')],
      h('div', { class: 'mk-dom-body' },
        doughnut(slices, ['BTC', btc === null ? '—' : percent(btc)], `${t('dominance')}: ${label}`),
        h('ul', { class: 'mk-legend' },
          row('mk-c-btc', 'BTC', 'btc_market_cap_percentage', btc),
          row('mk-c-eth', 'ETH', 'eth_market_cap_percentage', eth),
          h('li', null, h('span', { class: 'mk-key mk-c-other', 'aria-hidden': 'true' }), `${t('others')} `,
            known ? h('span', { class: 'mk-value' }, percent(other)) : missing()))));
  }

  function gaugeCard(cls, title, stale, v, bands, label) {
    const text = v === null ? na() : `${fmt(v, 0, 1)}${label ? `, ${label}` : ''}`;
    const zone = v === null ? '' : ` mk-zone ${band(bands, v).cls}`;
    return card(cls, [title, stale],
      gauge(v, bands, `${title}: ${text}`),
      h('p', { class: `mk-gauge-label${zone}` }, label || na()));
  }

  function fngCard(d) {
    const v = num(d.fng_value);
    return gaugeCard('mk-fng', t('fng'), staleMark('fng_value'), v === null ? null : clamp(v, 0, 100),
      FNG_BANDS, fngLabel(d, v));
  }

  function rsiValue(d) {
    const v = num(d.rsi_14);
    return v !== null ? v : num(d.btc_rsi_14);
  }

  function rsiCard(d) {
    const v = rsiValue(d);
    return gaugeCard('mk-rsi', t('rsi'), staleMark('rsi_14'), v === null ? null : clamp(v, 0, 100),
      RSI_BANDS, rsiLabel(v));
  }

  function coinsCard(d) {
    const rows = COINS.slice(1).map(([sym, name]) => h('tr', null,
      h('th', { scope: 'row' }, h('span', { class: 'mk-sym' }, sym.toUpperCase()), ' ', h('span', { class: 'mk-muted mk-name' }, name)),
      h('td', null, value(`${sym}_price_usd`, d[`${sym}_price_usd`], price)),
      h('td', null, change(`${sym}_change_24h`, d[`${sym}_change_24h`]))));
    return card('mk-coins', [t('coins'), staleMark('eth_price_usd')], h('table', { class: 'mk-table' }, h('tbody', null, ...rows)));
  }

  function indexOf(d, sym) {
    const all = d && d.us_stock_indices;
    const row = all && typeof all === 'object' ? all[sym] : null;
    return row && typeof row === 'object' ? row : {};
  }

  function indicesCard(d) {
    const rows = INDICES.map(([sym, short]) => {
      const q = indexOf(d, sym);
      const full = typeof q.name === 'string' && q.name ? q.name : null;
      return h('tr', null,
        h('th', { scope: 'row', title: full }, h('span', { class: 'mk-sym' }, sym), ' ', h('span', { class: 'mk-muted mk-name' }, short)),
        h('td', null, value(`${sym.toLowerCase()}_price`, q.price, price)),
        h('td', null, change(`${sym.toLowerCase()}_change_percent`, q.change_percent)));
    });
    return card('mk-indices', [t('indices'), staleMark('us_stock_indices.SPY')], h('table', { class: 'mk-table' }, h('tbody', null, ...rows)));
  }

  // ---- compact cards (report pages) ------------------------------------------------------

  function mini(label, main, sub, stale) {
    return h('div', { class: 'mk-mini' },
      h('span', { class: 'mk-mini-label' }, label),
      h('span', { class: 'mk-mini-value' }, main),
      h('span', { class: 'mk-mini-sub' }, stale || sub || ''));
  }

  function compactGrid(d) {
    const fng = num(d.fng_value);
    const rsi = rsiValue(d);
    const zone = (v, bands) => (v === null ? '' : ` mk-zone ${band(bands, v).cls}`);
    // A scrolling row: focusable, so a keyboard can scroll it too.
    return h('div', { class: 'mk-minis', tabindex: 0, role: 'group', 'aria-label': t('strip') },
      ...COINS.map(([sym]) => mini(sym.toUpperCase(), value(`${sym}_price_usd`, d[`${sym}_price_usd`], price),
        change(`${sym}_change_24h`, d[`${sym}_change_24h`]), staleMark(`${sym}_price_usd`))),
      mini(t('market_cap'), value('market_cap_usd', d.market_cap_usd, bigUsd),
        change('market_cap_change_percentage_24h_usd', d.market_cap_change_percentage_24h_usd), staleMark('market_cap_usd')),
      mini(t('volume'), value('volume_24h_usd', d.volume_24h_usd, bigUsd), null, staleMark('volume_24h_usd')),
      mini(t('dominance'), value('btc_market_cap_percentage', d.btc_market_cap_percentage, (n) => `BTC ${percent(n)}`),
        value('eth_market_cap_percentage', d.eth_market_cap_percentage, (n) => `ETH ${percent(n)}`), staleMark('btc_market_cap_percentage')),
      mini(t('fng_short'), value('fng_value', fng, (n) => fmt(n, 0, 0)),
        h('span', { class: `mk-zone-text${zone(fng, FNG_BANDS)}` }, fngLabel(d, fng) || ''), staleMark('fng_value')),
      mini(t('rsi_short'), value('rsi_14', rsi, (n) => fmt(n, 0, 1)),
        h('span', { class: `mk-zone-text${zone(rsi, RSI_BANDS)}` }, rsiLabel(rsi) || ''), staleMark('rsi_14')),
      ...(unconfigured(d, 'us_stock_indices') ? [] : INDICES).map(([sym]) => {
        const q = indexOf(d, sym);
        return mini(sym, value(`${sym.toLowerCase()}_price`, q.price, price),
          change(`${sym.toLowerCase()}_change_percent`, q.change_percent), staleMark(`us_stock_indices.${sym}`));
      }));
  }

  // ---- frame -----------------------------------------------------------------------------

  // What the bar says is what is true: "live" only with values; otherwise which groups have
  // none, which sources fail and since when.
  // The newest value is older than two refresh periods (one missed refresh is not yet news),
  // and at least half a minute old (a fast tick, like the demo's, that comes a few seconds late
  // on a busy machine is not news to a reader either): however the connection is, the numbers
  // are not live.
  const DELAYED_FLOOR_MS = 30 * 1000;
  function delayed(d, updated) {
    const period = d ? num(d.refresh_seconds) : null;
    if (!updated || period === null || period <= 0) return false;
    return Date.now() - updated.getTime() > Math.max(2 * period * 1000, DELAYED_FLOOR_MS);
  }

  function statusBar(d) {
    const trouble = d ? groupTrouble(d) : [];
    const configured = GROUPS.filter((g) => !unconfigured(d, g.health)).length;
    const none = d !== null && trouble.length === configured && trouble.every((x) => x.kind === 'never');
    const updated = d ? toDate(d.last_updated) : null;
    let status = none ? 'nodata' : state.status;
    if (!none && (status === 'live' || status === 'polling') && delayed(d, updated)) status = 'delayed';
    const statusText = status === 'delayed'
      ? [`${t('status_delayed')} `, h('time', { datetime: updated.toISOString() }, shortTime(updated))]
      : t(`status_${status}`);
    return h('div', { class: 'mk-bar' },
      d && d.demo === true
        ? h('span', { class: 'mk-demo', title: t('demo_note') }, h('strong', null, t('demo_badge')), h('span', { class: 'mk-demo-note' }, t('demo_note')))
        : null,
      h('span', { class: `mk-status mk-status-${status}`, 'data-status': status },
        h('span', { class: 'mk-dot', 'aria-hidden': 'true' }), statusText),
      h('span', { class: 'mk-updated' }, updated
        ? [`${t('updated')}: `, h('time', { datetime: updated.toISOString() }, dateTime(updated))]
        : ''),
      trouble.length
        ? h('span', { class: 'mk-trouble' }, h('strong', null, `${t('failing')}: `), troubleText(trouble))
        : null,
      state.report
        ? h('span', { class: 'mk-new-report' }, `${t('new_report')} `,
          h('a', { href: `/crypto_report/${state.report.id}` }, t('read_now')))
        : null);
  }

  function build(compact) {
    const d = state.data || {};
    const root = h('div', { class: compact ? 'mk mk-compact' : 'mk', lang: lang() }, statusBar(state.data));
    if (compact) {
      root.appendChild(compactGrid(d));
    } else {
      const indices = !unconfigured(d, 'us_stock_indices');
      root.appendChild(h('div', { class: indices ? 'mk-grid' : 'mk-grid mk-no-indices' },
        btcCard(d), globalCard(d), dominanceCard(d), fngCard(d), rsiCard(d), coinsCard(d), indices ? indicesCard(d) : null));
    }
    return root;
  }

  window.crMarketView = {
    build(current, compact) {
      state = current;
      return build(compact);
    },
    // Something has no value or an old one: worth asking /health which sources fail.
    troubled(data) {
      state = { ...state, data };
      return groupTrouble(data).length > 0;
    },
    // /health has said, for every group in trouble, which providers fail (or that none is
    // configured); until then their first attempts may still be running.
    explained(current) {
      state = current;
      const groups = current.health && current.health.market && current.health.market.groups;
      return groupTrouble(current.data).every(({ group, kind }) => {
        const gh = groups && typeof groups === 'object' ? groups[group.health] : null;
        return !!gh && (providersOf(gh).length > 0 || (gh.complete === true && kind === 'never'));
      });
    },
  };
})();
