// "Since this report": fills the "now" and "change" columns of the panel (#since) from the
// live market snapshot that js/market.js receives (event `cr:market`). The values at
// publication come from the server, fixed per report; nothing here is cached with the page.
(function () {
  'use strict';

  const panel = document.getElementById('since');
  if (!panel) return;

  const strings = (() => {
    const el = document.getElementById('i18n-strings');
    try {
      return el ? JSON.parse(el.textContent) : {};
    } catch (e) {
      return {};
    }
  })();
  const FNG_VI = {
    'Extreme Fear': 'Sợ hãi tột độ', Fear: 'Sợ hãi', Neutral: 'Trung lập', Greed: 'Tham lam',
    'Extreme Greed': 'Tham lam tột độ',
  };
  let latest = null;

  function lang() {
    return document.documentElement.getAttribute('data-lang') === 'en' ? 'en' : 'vi';
  }

  function t(key) {
    const table = strings[lang()] || {};
    return table[key] || key;
  }

  function num(v) {
    if (typeof v === 'number') return Number.isFinite(v) ? v : null;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
    return null;
  }

  function fmt(v, digits) {
    return window.crNumbers.fixed(v, digits, digits, lang());
  }

  function usd(text) {
    return lang() === 'vi' ? `${text} USD` : `$${text}`;
  }

  function big(v) {
    const units = lang() === 'vi'
      ? [[1e12, ' nghìn tỷ'], [1e9, ' tỷ'], [1e6, ' triệu']]
      : [[1e12, 'T'], [1e9, 'B'], [1e6, 'M']];
    for (const [size, unit] of units) {
      if (Math.abs(v) >= size) return usd(fmt(v / size, 2) + unit);
    }
    return usd(fmt(v, 0));
  }

  function signed(v, digits, suffix) {
    const sign = v > 0 ? '+' : v < 0 ? '−' : '';
    return `${sign}${fmt(Math.abs(v), digits)}${suffix}`;
  }

  // The value now as the row writes it.
  function nowText(kind, v, d) {
    switch (kind) {
      case 'price': return usd(fmt(v, 2));
      case 'big': return big(v);
      case 'share': return `${fmt(v, 2)}%`;
      default: {
        const raw = d && (d.fng_value_classification || d.fng_classification);
        const label = typeof raw === 'string' && raw ? (lang() === 'vi' && FNG_VI[raw] ? FNG_VI[raw] : raw) : '';
        return label ? `${fmt(v, 0)} · ${label}` : fmt(v, 0);
      }
    }
  }

  // Prices and the market cap change in percent; dominance and the index in points.
  function change(kind, then, now) {
    if (kind === 'price' || kind === 'big') return signed(((now - then) / then) * 100, 2, '%');
    if (kind === 'share') return signed(now - then, 2, ` ${t('since_points')}`);
    return signed(now - then, 0, ` ${t('since_points')}`);
  }

  function cell(el, text, cls) {
    const span = document.createElement('span');
    if (cls) span.className = cls;
    span.textContent = text;
    el.replaceChildren(span);
  }

  // The strip's one line: the change of each row that has a short name and both values.
  function renderBrief() {
    const brief = document.getElementById('since-brief');
    if (!brief || !latest) return;
    const parts = [];
    panel.querySelectorAll('tr[data-field]').forEach((row) => {
      const short = row.getAttribute('data-short');
      const then = num(row.getAttribute('data-then'));
      const now = num(latest[row.getAttribute('data-field')]);
      if (!short || then === null || then === 0 || now === null) return;
      const dir = now > then ? 'up' : now < then ? 'down' : 'flat';
      const item = document.createElement('span');
      item.className = `since-delta since-${dir}`;
      item.textContent = `${short} ${change(row.getAttribute('data-kind'), then, now)}`;
      parts.push(item);
    });
    if (!parts.length) {
      cell(brief, '—', 'since-unknown');
      return;
    }
    brief.replaceChildren(...parts);
  }

  function render() {
    renderBrief();
    panel.querySelectorAll('tr[data-field]').forEach((row) => {
      const kind = row.getAttribute('data-kind');
      const then = num(row.getAttribute('data-then'));
      const now = latest ? num(latest[row.getAttribute('data-field')]) : null;
      const nowCell = row.querySelector('.since-now');
      const changeCell = row.querySelector('.since-change');
      if (!nowCell || !changeCell) return;
      if (!latest) return; // "…" until the first snapshot
      if (now === null) {
        cell(nowCell, t('since_unknown'), 'since-unknown');
        cell(changeCell, '—', 'since-unknown');
        return;
      }
      cell(nowCell, nowText(kind, now, latest), 'since-value');
      if (then === null || then === 0) {
        cell(changeCell, '—', 'since-unknown');
        return;
      }
      const dir = now > then ? 'up' : now < then ? 'down' : 'flat';
      cell(changeCell, change(kind, then, now), `since-delta since-${dir}`);
    });
  }

  document.addEventListener('cr:market', (event) => {
    if (event.detail && typeof event.detail === 'object') {
      latest = event.detail;
      render();
    }
  });
  document.addEventListener('cr:language', render);
})();
