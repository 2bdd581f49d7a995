/*
 * report-runtime.js: the globals a report's own JS expects (SPEC §3.2): SVG charts, the
 * language manager and the CHART_DATA comment renderer. Loaded in the <head> of the sandboxed
 * report document, before the report JS. Never touches storage or cookies (they throw in the
 * opaque origin). Every chart function clears its container, draws one <svg>, returns it, and
 * never throws: bad input gets a console.warn and a "no data" placeholder.
 */
(function () {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const LOG = '[cr-report]';
  const html = document.documentElement;

  // The frame's theme comes in its URL (one cached document serves both themes); applied
  // here, in <head>, so the first paint already has it.
  if (html.getAttribute('data-mode') === 'frame') {
    const theme = new URLSearchParams(window.location.search).get('theme');
    if (theme === 'dark' || theme === 'light') html.setAttribute('data-theme', theme);
  }

  // Series colours for items without one; each var() has a fallback so it paints regardless.
  const PALETTE = [
    'var(--accent-color, #2563eb)',
    'var(--dark-orange-color, #ff8c00)',
    'var(--medium-sea-green-color, #3cb371)',
    'var(--purple-color, #800080)',
    'var(--firebrick-color, #b22222)',
    'var(--teal-color, #008080)',
    'var(--gold-color, #daa520)',
    'var(--slate-gray-color, #708090)',
  ];
  const TRACK = 'var(--border-color, #e2e8f0)';
  const ACCENT = 'var(--accent-color, #2563eb)';
  const POSITIVE = 'var(--positive-color, #15803d)';
  const NEGATIVE = 'var(--negative-color, #dc2626)';

  const UI = {
    vi: { noData: 'Không có dữ liệu', gauge: 'Đồng hồ đo', line: 'Biểu đồ đường', bar: 'Biểu đồ cột',
      doughnut: 'Biểu đồ tròn', points: 'điểm', min: 'thấp nhất', max: 'cao nhất', last: 'mới nhất' },
    en: { noData: 'No data', gauge: 'Gauge', line: 'Line chart', bar: 'Bar chart',
      doughnut: 'Doughnut chart', points: 'points', min: 'min', max: 'max', last: 'last' },
  };

  // ---------------------------------------------------------------- language

  const normalizeLang = (lang) => (lang === 'en' ? 'en' : 'vi');

  // currentLanguage is the content language: without an English version it stays 'vi' even
  // when the reader asked for English (requestedLanguage remembers the ask).
  const languageManager = {
    currentLanguage: 'vi',
    requestedLanguage: normalizeLang(html.dataset.lang),
    hasEnglish: html.dataset.hasEn !== 'false',
    contentLanguageFor: (lang) =>
      (normalizeLang(lang) === 'en' && languageManager.hasEnglish ? 'en' : 'vi'),
    getCurrentLanguage: () => languageManager.currentLanguage,
    locale: () => (currentLang() === 'en' ? 'en-US' : 'vi-VN'),
  };
  languageManager.currentLanguage = languageManager.contentLanguageFor(languageManager.requestedLanguage);

  // Read through window so a report that replaces languageManager is still honoured.
  function currentLang() {
    const lm = window.languageManager;
    return normalizeLang(lm && lm.currentLanguage);
  }
  const ui = () => UI[currentLang()];

  // ---------------------------------------------------------------- numbers and text

  // Strict: numbers and plain numeric strings only; '' and null are not 0.
  function toNumber(value) {
    if (typeof value === 'number') return value;
    if (typeof value === 'string' && value.trim() !== '') return Number(value.trim());
    return NaN;
  }

  // js/numbers.js writes the shapes used here as Intl would, without loading locale data;
  // other options (a report calling crReport.formatNumber with its own) go to Intl.
  const formatterCache = new Map();
  const FIXED_OPTIONS = new Set(['minimumFractionDigits', 'maximumFractionDigits']);

  function formatNumber(value, options) {
    const n = toNumber(value);
    if (!Number.isFinite(n)) return '—';
    const opts = options || defaultDigits(n);
    const lang = currentLang() === 'en' ? 'en' : 'vi';
    const numbers = window.crNumbers;
    const keys = Object.keys(opts);
    const max = opts.maximumFractionDigits;
    if (numbers && Number.isInteger(max) && max >= 0 && max <= 20) {
      if (keys.every((k) => FIXED_OPTIONS.has(k))) {
        const min = Number.isInteger(opts.minimumFractionDigits) ? Math.min(opts.minimumFractionDigits, max) : 0;
        return numbers.fixed(n, min, max, lang);
      }
      if (keys.length === 2 && opts.style === 'percent') return numbers.percent(n, max, lang);
      if (keys.length === 2 && opts.notation === 'compact') return numbers.compact(n, max, lang);
    }
    if (numbers && keys.length === 1 && Number.isInteger(opts.maximumSignificantDigits)
      && opts.maximumSignificantDigits >= 1 && opts.maximumSignificantDigits <= 21) {
      return numbers.significant(n, opts.maximumSignificantDigits, lang);
    }
    const locale = lang === 'en' ? 'en-US' : 'vi-VN';
    const key = locale + JSON.stringify(opts);
    try {
      let formatter = formatterCache.get(key);
      if (!formatter) {
        formatter = new Intl.NumberFormat(locale, opts);
        formatterCache.set(key, formatter);
      }
      return formatter.format(n);
    } catch (err) {
      return String(n);
    }
  }

  function defaultDigits(n) {
    const a = Math.abs(n);
    if (a >= 1e6) return { notation: 'compact', maximumFractionDigits: 2 };
    if (a >= 1000) return { maximumFractionDigits: 0 };
    if (a >= 1 || a === 0) return { maximumFractionDigits: 2 };
    return { maximumSignificantDigits: 3 };
  }

  const formatPercent = (ratio) => formatNumber(ratio, { style: 'percent', maximumFractionDigits: 1 });
  const plain = (v) => (typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : '');
  const withAffixes = (text, cfg) => `${plain(cfg.valuePrefix)}${text}${plain(cfg.valueSuffix)}`;

  // "-$45M", not "$-45M": the sign goes before a prefix such as a currency symbol.
  function formatValue(value, cfg, options) {
    const n = toNumber(value);
    if (!plain(cfg.valuePrefix) || !(n < 0)) return withAffixes(formatNumber(n, options), cfg);
    return `-${withAffixes(formatNumber(-n, options), cfg)}`;
  }

  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const clamp = (n, lo, hi) => Math.min(hi, Math.max(lo, n));
  const r2 = (n) => Math.round(n * 100) / 100;

  // Average glyph width of the system sans stack; good enough to lay out labels.
  const textWidth = (text, size) => String(text).length * size * 0.58;

  function truncate(text, maxChars) {
    const s = String(text);
    if (s.length <= maxChars) return s;
    return `${s.slice(0, Math.max(1, maxChars - 1)).trimEnd()}…`;
  }

  // Greedy word wrap into at most maxLines lines; whatever does not fit ends in an ellipsis.
  function wrapText(text, maxChars, maxLines) {
    const words = String(text).normalize('NFC').split(/\s+/).filter(Boolean);
    const lines = [];
    let line = '';
    for (const word of words) {
      const candidate = line ? `${line} ${word}` : word;
      if (candidate.length <= maxChars || !line) line = candidate;
      else {
        lines.push(line);
        line = word;
      }
    }
    if (line) lines.push(line);
    if (lines.length > maxLines) lines.splice(maxLines - 1, lines.length, lines.slice(maxLines - 1).join(' '));
    return lines.map((l) => truncate(l, maxChars));
  }

  // Colours come from report data: accept short strings only, applied through style so var() works.
  function colorOr(value, fallback) {
    return typeof value === 'string' && value.trim() && value.length < 200 ? value.trim() : fallback;
  }

  // ---------------------------------------------------------------- SVG helpers

  function svgEl(name, attrs, parent) {
    const el = document.createElementNS(SVG_NS, name);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value !== undefined && value !== null) el.setAttribute(key, String(value));
      }
    }
    if (parent) parent.appendChild(el);
    return el;
  }

  function svgText(parent, x, y, content, attrs) {
    const text = svgEl('text', { x: r2(x), y: r2(y), ...attrs }, parent);
    text.textContent = content;
    return text;
  }

  // A text label; anchor defaults to middle, extra attributes (anchor, weight, transform) override.
  function svgLabel(parent, x, y, content, cls, size, extra) {
    return svgText(parent, x, y, content, { class: cls, 'font-size': size, 'text-anchor': 'middle', ...extra });
  }

  // Several lines in one <text>, each a <tspan> restarting at x.
  function svgLines(parent, x, y, lines, lineHeight, cls, size, extra) {
    const text = svgLabel(parent, x, y, '', cls, size, extra);
    lines.forEach((line, n) => {
      svgEl('tspan', { x: r2(x), dy: n === 0 ? 0 : lineHeight }, text).textContent = line;
    });
    return text;
  }

  function paint(el, property, color) {
    el.style.setProperty(property, color);
    return el;
  }

  function addTitle(el, content) {
    svgEl('title', null, el).textContent = content;
  }

  function polar(cx, cy, r, deg) {
    const a = (deg * Math.PI) / 180;
    return [r2(cx + r * Math.sin(a)), r2(cy - r * Math.cos(a))];
  }

  // Clockwise arc; angles in degrees from 12 o'clock.
  function arcPath(cx, cy, r, a0, a1) {
    const [x0, y0] = polar(cx, cy, r, a0);
    const [x1, y1] = polar(cx, cy, r, a1);
    return `M${x0} ${y0}A${r} ${r} 0 ${a1 - a0 > 180 ? 1 : 0} 1 ${x1} ${y1}`;
  }

  function innerSize(el) {
    let padX = 0;
    let padY = 0;
    if (typeof getComputedStyle === 'function') {
      const cs = getComputedStyle(el);
      padX = (parseFloat(cs.paddingLeft) || 0) + (parseFloat(cs.paddingRight) || 0);
      padY = (parseFloat(cs.paddingTop) || 0) + (parseFloat(cs.paddingBottom) || 0);
    }
    return { width: (el.clientWidth || 0) - padX, height: (el.clientHeight || 0) - padY };
  }

  // The viewBox uses the container's pixel width so text keeps its size on phones. 0 when the
  // container is hidden or not laid out: the caller then uses a default and the SVG still scales.
  function measuredWidth(container) {
    const { width } = innerSize(container);
    return width >= 160 ? Math.round(Math.min(width, 1600)) : 0;
  }

  function chartHeight(container, width, fallback) {
    const { height } = innerSize(container);
    const wanted = height >= 160 && height <= 480 ? height : fallback;
    return Math.round(clamp(wanted, 160, Math.max(200, width * 0.75)));
  }

  // measured: the container width the layout was made for, kept so a later resize can tell
  // whether this chart needs redrawing (see chartsOutOfDate).
  function createSvg(container, kind, width, height, label, measured) {
    const svg = svgEl('svg', {
      class: `cr-chart cr-${kind}`,
      viewBox: `0 0 ${r2(width)} ${r2(height)}`,
      width: '100%',
      role: 'img',
      'aria-label': label,
      focusable: 'false',
    });
    svg.style.display = 'block';
    svg.style.height = 'auto';
    svg.style.overflow = 'visible';
    if (measured) svg.setAttribute('data-cr-width', String(measured));
    container.appendChild(svg);
    return svg;
  }

  function clearContainer(container) {
    container.textContent = '';
  }

  function drawPlaceholder(container, kind) {
    clearContainer(container);
    const width = measuredWidth(container) || 320;
    const text = ui().noData;
    const svg = createSvg(container, `${kind} cr-empty`, width, 60, text);
    svgText(svg, width / 2, 34, text, { class: 'cr-placeholder', 'text-anchor': 'middle', 'font-size': 13 });
    return svg;
  }

  function resolveContainer(container, name) {
    const el = typeof container === 'string'
      ? document.getElementById(container.replace(/^#/, ''))
      : container;
    if (el && el.nodeType === 1) return el;
    console.warn(`${LOG} ${name}: container not found`, container);
    return null;
  }

  // Wraps a drawing function: resolves and clears the container, turns any failure into a
  // placeholder so one bad chart never stops the report's init function.
  function chartFunction(name, kind, draw) {
    return function (container, data, config) {
      const el = resolveContainer(container, name);
      if (!el) return null;
      try {
        clearContainer(el);
        return draw(el, data, config) || drawPlaceholder(el, kind);
      } catch (err) {
        console.warn(`${LOG} ${name} failed, drawing a placeholder:`, err);
        try {
          return drawPlaceholder(el, kind);
        } catch (inner) {
          return null;
        }
      }
    };
  }

  function noData(name, detail, input) {
    console.warn(`${LOG} ${name}: ${detail}`, input);
    return null;
  }

  // ---------------------------------------------------------------- gauge

  const GAUGE = { width: 220, height: 178, cx: 110, cy: 100, r: 80, thickness: 18, start: -120, sweep: 240 };

  function gaugeRange(cfg) {
    const min = Number.isFinite(toNumber(cfg.min)) ? toNumber(cfg.min) : 0;
    const max = Number.isFinite(toNumber(cfg.max)) ? toNumber(cfg.max) : 100;
    if (max > min) return { min, max };
    console.warn(`${LOG} createGauge: max must exceed min, using 0..100`, cfg);
    return { min: 0, max: 100 };
  }

  function normalizeSegments(segments) {
    if (!Array.isArray(segments)) return [];
    return segments
      .filter((s) => isObject(s) && Number.isFinite(toNumber(s.limit)))
      .map((s, i) => ({
        limit: toNumber(s.limit),
        color: colorOr(s.color, PALETTE[i % PALETTE.length]),
        label: plain(s.label),
      }))
      .sort((a, b) => a.limit - b.limit);
  }

  // Coloured arcs per segment (a small gap between them), or a neutral track plus a progress
  // arc when the config has no segments; any range the segments leave uncovered stays neutral.
  function drawGaugeArcs(svg, segments, range, value) {
    const { cx, cy, r, thickness, start, sweep } = GAUGE;
    const angleOf = (v) => start + (sweep * (clamp(v, range.min, range.max) - range.min)) / (range.max - range.min);
    const group = svgEl('g', { fill: 'none', 'stroke-width': thickness, 'stroke-linecap': 'butt' }, svg);
    const arc = (a0, a1, color, cls) => {
      if (a1 - a0 > 0.05) paint(svgEl('path', { class: cls, d: arcPath(cx, cy, r, a0, a1) }, group), 'stroke', color);
    };
    if (!segments.length) {
      arc(start, start + sweep, TRACK, 'cr-gauge-track');
      if (Number.isFinite(value)) arc(start, angleOf(value), ACCENT, 'cr-gauge-fill');
      return angleOf;
    }
    const gap = 0.8;
    let from = range.min;
    segments.forEach((s, i) => {
      const to = clamp(s.limit, range.min, range.max);
      if (to <= from) return;
      const a0 = angleOf(from) + (from > range.min ? gap / 2 : 0);
      const a1 = angleOf(to) - (to < range.max ? gap / 2 : 0);
      arc(a0, a1, s.color, `cr-gauge-segment cr-gauge-segment-${i}`);
      from = to;
    });
    if (from < range.max) arc(angleOf(from) + gap / 2, start + sweep, TRACK, 'cr-gauge-track');
    return angleOf;
  }

  function drawGaugeNeedle(svg, angle) {
    const { cx, cy, r } = GAUGE;
    const needle = svgEl('g', { class: 'cr-gauge-needle', transform: `rotate(${r2(angle)} ${cx} ${cy})` }, svg);
    svgEl('path', { d: `M${cx - 4.5} ${cy}L${cx} ${cy - r + 12}L${cx + 4.5} ${cy}Z` }, needle);
    svgEl('circle', { cx, cy, r: 8, class: 'cr-gauge-hub' }, svg);
    svgEl('circle', { cx, cy, r: 3, class: 'cr-gauge-hub-dot' }, svg);
  }

  // Rows, top to bottom: value, min/max under the arc ends, segment label; they never overlap.
  function drawGaugeText(svg, valueText, label, range) {
    const { cx, cy, r, start, sweep } = GAUGE;
    const [minX, endY] = polar(cx, cy, r, start);
    const [maxX] = polar(cx, cy, r, start + sweep);
    svgLabel(svg, cx, cy + 38, valueText, 'cr-gauge-value', 28, { 'font-weight': 700 });
    svgLabel(svg, minX, endY + 14, formatNumber(range.min), 'cr-gauge-limit', 10);
    svgLabel(svg, maxX, endY + 14, formatNumber(range.max), 'cr-gauge-limit', 10);
    if (!label) return;
    const text = svgLabel(svg, cx, cy + 67, truncate(label, 22), 'cr-gauge-label', 14, { 'font-weight': 600 });
    if (text.textContent !== label) addTitle(text, label);
  }

  function drawGauge(container, rawValue, rawConfig) {
    const cfg = isObject(rawConfig) ? rawConfig : {};
    const range = gaugeRange(cfg);
    const raw = toNumber(rawValue);
    const hasValue = Number.isFinite(raw);
    if (!hasValue) console.warn(`${LOG} createGauge: value is not a number`, rawValue);
    const value = hasValue ? clamp(raw, range.min, range.max) : NaN;
    const segments = normalizeSegments(cfg.segments);
    // The label of the first segment whose limit reaches the value; past the last, the last.
    const segment = hasValue ? segments.find((s) => s.limit >= value) || segments[segments.length - 1] : null;
    const label = segment ? segment.label : '';
    const valueText = hasValue ? formatValue(raw, cfg, { maximumFractionDigits: 1 }) : '—';

    const aria = `${plain(cfg.title) || ui().gauge}: ${valueText}${label ? ` (${label})` : ''}, `
      + `${formatNumber(range.min)}–${formatNumber(range.max)}`;
    const svg = createSvg(container, 'gauge', GAUGE.width, GAUGE.height, aria);
    svg.style.maxWidth = '320px';
    svg.style.margin = '0 auto';
    const angleOf = drawGaugeArcs(svg, segments, range, value);
    if (hasValue) drawGaugeNeedle(svg, angleOf(value));
    drawGaugeText(svg, valueText, label, range);
    return svg;
  }

  // ---------------------------------------------------------------- line chart

  // Numbers, numeric strings, {value|y|price|close} objects or [x, y] pairs.
  function toSeries(data) {
    if (!Array.isArray(data)) return [];
    return data
      .map((item) => {
        if (Array.isArray(item)) return toNumber(item[item.length - 1]);
        if (isObject(item)) return toNumber(item.value ?? item.y ?? item.price ?? item.close);
        return toNumber(item);
      })
      .filter(Number.isFinite);
  }

  function drawLine(container, data, rawConfig) {
    const cfg = isObject(rawConfig) ? rawConfig : {};
    const values = toSeries(data);
    if (!values.length) return noData('createLineChart', 'no numeric data', data);
    if (values.length < data.length) {
      console.warn(`${LOG} createLineChart: skipped ${data.length - values.length} non-numeric point(s)`);
    }
    const color = colorOr(cfg.color, ACCENT);
    const strokeWidth = clamp(Number.isFinite(toNumber(cfg.strokeWidth)) ? toNumber(cfg.strokeWidth) : 2, 0.5, 8);
    const fmt = (v) => formatValue(v, cfg);
    const lo = values.reduce((a, b) => Math.min(a, b));
    const hi = values.reduce((a, b) => Math.max(a, b));
    const last = values[values.length - 1];
    const flat = hi - lo <= Math.abs(hi) * 1e-12; // equal values: one centred line

    const measured = measuredWidth(container);
    const width = measured || 600;
    const height = chartHeight(container, width, 240);
    const padLeft = Math.min(width * 0.35, Math.max(textWidth(fmt(lo), 11), textWidth(fmt(hi), 11)) + 12);
    const box = { x0: padLeft, x1: width - 12, y0: 26, y1: height - 18 };
    const step = values.length > 1 ? (box.x1 - box.x0) / (values.length - 1) : 0;
    const xOf = (i) => (values.length > 1 ? box.x0 + i * step : (box.x0 + box.x1) / 2);
    const yOf = (v) => (flat ? (box.y0 + box.y1) / 2 : box.y1 - ((v - lo) / (hi - lo)) * (box.y1 - box.y0));

    const t = ui();
    const aria = `${t.line}: ${values.length} ${t.points}, ${t.min} ${fmt(lo)}, ${t.max} ${fmt(hi)}, ${t.last} ${fmt(last)}`;
    const svg = createSvg(container, 'line', width, height, aria, measured);

    // Dashed guides at the max and min, labelled on the left.
    const grid = svgEl('g', { class: 'cr-grid', 'stroke-width': 1, 'stroke-dasharray': '3 4' }, svg);
    for (const v of flat ? [hi] : [hi, lo]) {
      const y = r2(yOf(v));
      svgEl('line', { x1: r2(box.x0), x2: r2(box.x1), y1: y, y2: y }, grid);
      svgLabel(svg, box.x0 - 6, y + 4, fmt(v), 'cr-axis-label', 11, { 'text-anchor': 'end' });
    }

    const points = values.map((v, i) => `${r2(xOf(i))} ${r2(yOf(v))}`).join('L');
    if (values.length > 1 && !flat && cfg.fill !== false && cfg.area !== false) {
      const d = `M${r2(box.x0)} ${r2(box.y1)}L${points}L${r2(box.x1)} ${r2(box.y1)}Z`;
      paint(svgEl('path', { class: 'cr-area', d, 'fill-opacity': 0.12 }, svg), 'fill', color);
    }
    if (values.length > 1) {
      const line = svgEl('path', {
        class: 'cr-line-path', d: `M${points}`, fill: 'none',
        'stroke-width': strokeWidth, 'stroke-linejoin': 'round', 'stroke-linecap': 'round',
      }, svg);
      paint(line, 'stroke', color);
    }
    drawLastPoint(svg, xOf(values.length - 1), yOf(last), fmt(last), { color, strokeWidth, width });
    return svg;
  }

  // The latest value: a dot and its label, kept inside the chart at the top and right edges.
  function drawLastPoint(svg, x, y, text, { color, strokeWidth, width }) {
    paint(svgEl('circle', { class: 'cr-point', cx: r2(x), cy: r2(y), r: r2(strokeWidth + 2) }, svg), 'fill', color);
    const atEdge = x + textWidth(text, 12) / 2 > width - 4;
    svgLabel(svg, atEdge ? x + 4 : x, y - 10 < 12 ? y + 20 : y - 10, text, 'cr-value', 12, {
      'text-anchor': atEdge ? 'end' : 'middle', 'font-weight': 600,
    });
  }

  // ---------------------------------------------------------------- bar chart

  function toItems(data, name) {
    if (!Array.isArray(data)) return [];
    const items = data
      .map((item, i) => (isObject(item)
        ? { value: toNumber(item.value), label: plain(item.label) || plain(item.name), color: item.color, index: i }
        : { value: toNumber(item), label: '', color: undefined, index: i }))
      .filter((item) => Number.isFinite(item.value));
    if (items.length < data.length) {
      console.warn(`${LOG} ${name}: skipped ${data.length - items.length} item(s) without a numeric value`);
    }
    return items;
  }

  // Slot per bar, wrapped category labels, value label size, and the zero line. Crowded charts
  // drop the labels that cannot fit; every bar keeps its tooltip.
  function barLayout(items, fmt, width, height, hasAxisLabel) {
    const lo = Math.min(0, ...items.map((d) => d.value));
    let hi = Math.max(0, ...items.map((d) => d.value));
    if (hi === lo) hi = 1; // all zero: an empty chart with its baseline at the bottom
    const padLeft = hasAxisLabel ? 26 : 6;
    const slot = (width - padLeft - 6) / items.length;
    const maxChars = Math.floor((slot - 4) / 6.4);
    const labels = items.map((d) => (maxChars >= 2 ? wrapText(d.label, maxChars, 2) : []));
    const labelLines = Math.max(0, ...labels.map((l) => l.length));
    const longest = Math.max(...items.map((d) => fmt(d.value).length));
    const valueSize = clamp(slot / (longest * 0.6), 8, 12);
    const showValues = textWidth('0'.repeat(longest), valueSize) <= slot + 2;
    const y0 = showValues ? 20 : 8;
    const y1 = height - labelLines * 13 - 8 - (lo < 0 && showValues ? 16 : 0);
    const scale = (y1 - y0) / (hi - lo);
    return {
      padLeft, slot, labels, labelLines, valueSize, showValues, y0, y1, scale,
      barWidth: Math.min(72, slot * 0.62),
      zeroY: y0 + hi * scale,
    };
  }

  function drawBar(svg, d, i, layout, fmt, height) {
    const { padLeft, slot, barWidth, zeroY, scale, valueSize } = layout;
    const x = padLeft + i * slot + (slot - barWidth) / 2;
    const cx = x + barWidth / 2;
    const h = Math.max(Math.abs(d.value) * scale, d.value === 0 ? 0 : 1);
    const y = d.value >= 0 ? zeroY - h : zeroY;
    const bar = svgEl('rect', {
      class: `cr-bar-rect ${d.value < 0 ? 'cr-negative' : 'cr-positive'}`,
      x: r2(x), y: r2(y), width: r2(barWidth), height: r2(h), rx: r2(Math.min(4, barWidth / 4)),
    }, svg);
    paint(bar, 'fill', colorOr(d.color, d.value < 0 ? NEGATIVE : POSITIVE));
    addTitle(bar, `${d.label ? `${d.label}: ` : ''}${fmt(d.value)}`);
    if (layout.showValues) {
      const labelY = d.value >= 0 ? y - 5 : y + h + valueSize + 2;
      svgLabel(svg, cx, labelY, fmt(d.value), 'cr-value', r2(valueSize), { 'font-weight': 600 });
    }
    const lines = layout.labels[i];
    if (!lines.length) return;
    const text = svgLines(svg, cx, height - layout.labelLines * 13 + 4, lines, 13, 'cr-category', 11);
    if (lines.join(' ') !== d.label) addTitle(text, d.label);
  }

  function drawBars(container, data, rawConfig) {
    const cfg = isObject(rawConfig) ? rawConfig : {};
    const items = toItems(data, 'createBarChart');
    if (!items.length) return noData('createBarChart', 'no numeric data', data);
    const fmt = (v) => formatValue(v, cfg);
    const axisLabel = plain(cfg.yAxisLabel);
    const measured = measuredWidth(container);
    const width = measured || 600;
    const height = chartHeight(container, width, 260);
    const layout = barLayout(items, fmt, width, height, !!axisLabel);

    const summary = items.map((d) => `${d.label || d.index + 1} ${fmt(d.value)}`).join(', ');
    const svg = createSvg(container, 'bar', width, height, `${axisLabel || ui().bar}: ${summary}`, measured);
    items.forEach((d, i) => drawBar(svg, d, i, layout, fmt, height));
    const zeroY = r2(layout.zeroY);
    svgEl('line', { class: 'cr-axis', x1: layout.padLeft, x2: r2(width - 6), y1: zeroY, y2: zeroY, 'stroke-width': 1 }, svg);
    if (axisLabel) {
      const midY = r2((layout.y0 + layout.y1) / 2);
      const fitted = truncate(axisLabel, Math.floor((layout.y1 - layout.y0) / 6.4));
      const text = svgLabel(svg, 12, midY, fitted, 'cr-axis-title', 11, { transform: `rotate(-90 12 ${midY})` });
      if (text.textContent !== axisLabel) addTitle(text, axisLabel);
    }
    return svg;
  }

  // ---------------------------------------------------------------- doughnut chart

  function sectorPath(cx, cy, outer, inner, a0, a1) {
    const large = a1 - a0 > 180 ? 1 : 0;
    const [ox0, oy0] = polar(cx, cy, outer, a0);
    const [ox1, oy1] = polar(cx, cy, outer, a1);
    const outerArc = `A${outer} ${outer} 0 ${large} 1 ${ox1} ${oy1}`;
    if (inner <= 0) return `M${cx} ${cy}L${ox0} ${oy0}${outerArc}Z`;
    const [ix1, iy1] = polar(cx, cy, inner, a1);
    const [ix0, iy0] = polar(cx, cy, inner, a0);
    return `M${ox0} ${oy0}${outerArc}L${ix1} ${iy1}A${inner} ${inner} 0 ${large} 0 ${ix0} ${iy0}Z`;
  }

  // A whole ring (one slice of 100%): two circles, the inner one cut out with evenodd.
  function ringPath(cx, cy, outer, inner) {
    const circle = (r, sweep) => `M${cx} ${r2(cy - r)}A${r} ${r} 0 1 ${sweep} ${cx} ${r2(cy + r)}`
      + `A${r} ${r} 0 1 ${sweep} ${cx} ${r2(cy - r)}Z`;
    return inner > 0 ? circle(outer, 1) + circle(inner, 0) : circle(outer, 1);
  }

  function doughnutConfig(raw) {
    const cfg = typeof raw === 'string' ? { title: raw } : isObject(raw) ? raw : {};
    const num = (v, fallback) => (Number.isFinite(toNumber(v)) ? toNumber(v) : fallback);
    const outer = clamp(num(cfg.outerRadius, 80), 24, 240);
    let inner = clamp(num(cfg.innerRadius, 50), 0, outer);
    if (inner >= outer - 4) inner = Math.round(outer * 0.62);
    return { title: plain(cfg.title), outer, inner, showLegend: cfg.showLegend !== false };
  }

  // Ring left and legend right when there is room, else the legend below. Radii larger than
  // the container allows shrink together, keeping the ring's proportions.
  function doughnutLayout(cfg, width, count) {
    const pad = 8;
    const rowHeight = 22;
    const fit = Math.min(1, Math.max(24, (width - 2 * pad) / 2) / cfg.outer);
    const outer = r2(cfg.outer * fit);
    const inner = r2(cfg.inner * fit);
    const titleInside = !!cfg.title && inner >= 28;
    const titleTop = cfg.title && !titleInside ? 22 : 0;
    const side = cfg.showLegend && width >= 2 * outer + 2 * pad + 200;
    const legendRows = cfg.showLegend ? count * rowHeight : 0;
    const chartBox = 2 * outer + 2 * pad + titleTop;
    const height = side
      ? Math.max(chartBox, legendRows + 2 * pad)
      : chartBox + (cfg.showLegend ? legendRows + pad : 0);
    return {
      width, height, pad, rowHeight, outer, inner, titleInside, side, chartBox,
      cx: side ? pad + outer : width / 2,
      cy: side ? Math.max(titleTop + pad + outer, height / 2) : titleTop + pad + outer,
    };
  }

  function drawSlices(svg, slices, total, layout) {
    const { outer, inner } = layout;
    const cx = r2(layout.cx);
    const cy = r2(layout.cy);
    const group = svgEl('g', { class: 'cr-slices', 'fill-rule': 'evenodd' }, svg);
    let angle = 0;
    for (const d of slices) {
      const sweep = (d.value / total) * 360;
      const path = sweep >= 359.99 ? ringPath(cx, cy, outer, inner) : sectorPath(cx, cy, outer, inner, angle, angle + sweep);
      const slice = svgEl('path', { class: 'cr-slice', d: path, 'stroke-width': slices.length > 1 ? 1.5 : 0 }, group);
      paint(slice, 'fill', d.color);
      addTitle(slice, `${d.label ? `${d.label}: ` : ''}${formatNumber(d.value)} (${formatPercent(d.value / total)})`);
      angle += sweep;
    }
  }

  // In the hole when it is big enough (wrapped to three lines), otherwise above the ring.
  function drawDoughnutTitle(svg, title, layout) {
    const { cx, cy, inner, pad, side, width } = layout;
    if (layout.titleInside) {
      const lines = wrapText(title, Math.max(4, Math.floor((inner * 1.6) / 7)), 3);
      svgLines(svg, cx, cy - ((lines.length - 1) * 14) / 2 + 4, lines, 14, 'cr-doughnut-title', 12, { 'font-weight': 600 });
      return;
    }
    const fitted = truncate(title, Math.floor((width - 2 * pad) / 7.5));
    const text = svgLabel(svg, side ? pad : cx, 16, fitted, 'cr-doughnut-title', 13, {
      'text-anchor': side ? 'start' : 'middle', 'font-weight': 600,
    });
    if (text.textContent !== title) addTitle(text, title);
  }

  function drawLegend(svg, slices, total, layout) {
    const { width, height, pad, rowHeight, chartBox, side } = layout;
    const x0 = side ? chartBox + 12 : Math.max(pad, width / 2 - 150);
    const x1 = side ? Math.min(width - pad, x0 + 300) : Math.min(width - pad, width / 2 + 150);
    const y0 = side ? (height - slices.length * rowHeight) / 2 : chartBox;
    const maxChars = Math.max(4, Math.floor((x1 - x0 - 80) / 6.6));
    const legend = svgEl('g', { class: 'cr-legend' }, svg);
    slices.forEach((d, i) => {
      const y = y0 + i * rowHeight + rowHeight / 2;
      paint(svgEl('rect', { x: r2(x0), y: r2(y - 6), width: 12, height: 12, rx: 3 }, legend), 'fill', d.color);
      const name = d.label || `#${d.index + 1}`;
      const label = svgLabel(legend, x0 + 18, y + 4, truncate(name, maxChars), 'cr-legend-label', 12, {
        'text-anchor': 'start',
      });
      if (label.textContent !== name) addTitle(label, name);
      svgLabel(legend, x1, y + 4, formatPercent(d.value / total), 'cr-value', 12, {
        'text-anchor': 'end', 'font-weight': 600,
      });
    });
  }

  function drawDoughnut(container, data, rawConfig) {
    const cfg = doughnutConfig(rawConfig);
    const items = toItems(data, 'createDoughnutChart');
    const slices = items.filter((d) => d.value > 0);
    if (slices.length < items.length) {
      console.warn(`${LOG} createDoughnutChart: skipped ${items.length - slices.length} zero or negative slice(s)`);
    }
    const total = slices.reduce((sum, d) => sum + d.value, 0);
    if (!slices.length || !Number.isFinite(total)) return noData('createDoughnutChart', 'no positive values', data);
    slices.forEach((d, i) => { d.color = colorOr(d.color, PALETTE[i % PALETTE.length]); });

    const measured = measuredWidth(container);
    const layout = doughnutLayout(cfg, measured || 480, slices.length);
    const summary = slices.map((d) => `${d.label || d.index + 1} ${formatPercent(d.value / total)}`).join(', ');
    const aria = `${cfg.title || ui().doughnut}: ${summary}`;
    const svg = createSvg(container, 'doughnut', layout.width, layout.height, aria, measured);
    drawSlices(svg, slices, total, layout);
    if (cfg.title) drawDoughnutTitle(svg, cfg.title, layout);
    if (cfg.showLegend) drawLegend(svg, slices, total, layout);
    return svg;
  }

  // ---------------------------------------------------------------- CHART_DATA comments

  const CHART_DATA = /^\s*CHART_DATA\s*:\s*([\s\S]*)$/;
  const chartSpecs = new WeakMap(); // container -> spec; survives the container being cleared
  const badComments = new WeakSet(); // warn about a malformed comment once, not on every redraw

  function parseChartComment(comment) {
    const match = CHART_DATA.exec(comment.data);
    if (!match || badComments.has(comment)) return null;
    try {
      const spec = JSON.parse(match[1].trim());
      if (isObject(spec) && typeof spec.type === 'string') return spec;
      throw new Error('expected an object with a "type"');
    } catch (err) {
      badComments.add(comment);
      console.warn(`${LOG} ignoring malformed CHART_DATA comment:`, err.message);
      return null;
    }
  }

  const isChartContainer = (el) => !!el && el.nodeType === Node.ELEMENT_NODE && el.classList.contains('chart-container');

  // The element itself, or the single chart container inside a wrapper next to the comment.
  function containerNear(el) {
    if (!el) return null;
    if (isChartContainer(el)) return el;
    const inside = el.querySelectorAll('.chart-container');
    return inside.length === 1 ? inside[0] : null;
  }

  // Nearest sibling element, skipping whitespace text and other comments.
  function siblingElement(node, forward) {
    const step = (n) => (forward ? n.nextSibling : n.previousSibling);
    let n = step(node);
    while (n && (n.nodeType === Node.COMMENT_NODE || (n.nodeType === Node.TEXT_NODE && !n.data.trim()))) n = step(n);
    return n && n.nodeType === Node.ELEMENT_NODE ? n : null;
  }

  // Pairs each CHART_DATA comment with a container. A comment between two containers is
  // ambiguous; it follows the direction the unambiguous comments of this report use.
  function pairComments(root) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_COMMENT);
    const found = [];
    for (let c = walker.nextNode(); c; c = walker.nextNode()) {
      const spec = parseChartComment(c);
      if (!spec) continue;
      if (isChartContainer(c.parentNode)) found.push({ spec, inside: c.parentNode });
      else found.push({ spec, next: containerNear(siblingElement(c, true)), prev: containerNear(siblingElement(c, false)) });
    }
    // The comment precedes its container unless this report's unambiguous comments say otherwise.
    let commentFirst = 0;
    for (const f of found) {
      if (f.next && !f.prev) commentFirst += 1;
      if (f.prev && !f.next) commentFirst -= 1;
    }
    for (const f of found) {
      const target = f.inside || (f.next && f.prev ? (commentFirst >= 0 ? f.next : f.prev) : f.next || f.prev);
      if (target && !chartSpecs.has(target)) chartSpecs.set(target, f.spec);
    }
  }

  // Empty, or holding only a chart this pass drew earlier (so theme/language redraws refresh it).
  function isFree(container) {
    const elements = container.children;
    if (elements.length === 0) return !container.textContent.trim();
    return elements.length === 1 && elements[0].getAttribute('data-cr-source') === 'chart-data';
  }

  function drawSpec(container, spec) {
    const data = spec.data;
    switch (spec.type) {
      case 'gauge':
        return createGauge(container, spec.value ?? (isObject(data) ? data.value : data), spec.config);
      case 'line':
        return createLineChart(container, data, spec.config);
      case 'bar':
        return createBarChart(container, data, spec.config);
      case 'doughnut':
      case 'pie':
        return createDoughnutChart(container, data, spec.config);
      default:
        console.warn(`${LOG} CHART_DATA: unknown chart type "${spec.type}"`);
        return null;
    }
  }

  function visibleLanguageRoot() {
    return document.getElementById(`report-content-${currentLang()}`)
      || document.getElementById('report-root')
      || document.body;
  }

  function renderChartDataComments(root) {
    const scope = root && root.nodeType === 1 ? root : visibleLanguageRoot();
    if (!scope) return 0;
    pairComments(scope);
    let drawn = 0;
    for (const container of scope.querySelectorAll('.chart-container')) {
      const spec = chartSpecs.get(container);
      if (!spec || !isFree(container)) continue;
      const svg = drawSpec(container, spec);
      if (svg) {
        svg.setAttribute('data-cr-source', 'chart-data');
        drawn += 1;
      }
    }
    return drawn;
  }

  // True when a chart laid out for its container's width now sits in a noticeably different
  // width (rotation, a grid breakpoint, print). Charts drawn hidden carry no width and never ask:
  // a container sized by its own content could otherwise redraw forever.
  function chartsOutOfDate(scope) {
    const root = scope && scope.nodeType === 1 ? scope : visibleLanguageRoot();
    for (const svg of root.querySelectorAll('svg.cr-chart[data-cr-width]')) {
      const drawn = Number(svg.getAttribute('data-cr-width'));
      const now = svg.parentElement ? measuredWidth(svg.parentElement) : 0;
      if (now && Math.abs(now - drawn) >= Math.max(24, drawn * 0.05)) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- exports

  const createGauge = chartFunction('createGauge', 'gauge', drawGauge);
  const createLineChart = chartFunction('createLineChart', 'line', drawLine);
  const createBarChart = chartFunction('createBarChart', 'bar', drawBars);
  const createDoughnutChart = chartFunction('createDoughnutChart', 'doughnut', drawDoughnut);

  // Plain writable globals: a report that declares its own createGauge must still be able to.
  window.createGauge = createGauge;
  window.createLineChart = createLineChart;
  window.createBarChart = createBarChart;
  window.createDoughnutChart = createDoughnutChart;
  window.languageManager = languageManager;
  window.crReport = Object.assign(window.crReport || {}, {
    createGauge,
    createLineChart,
    createBarChart,
    createDoughnutChart,
    formatNumber,
    renderChartDataComments,
    chartsOutOfDate,
    visibleLanguageRoot,
  });
})();
