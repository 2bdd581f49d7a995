// What a reader meets on every screen and in both languages, in headless Chromium against two
// real servers: the demo (bundled sample reports, a fast simulated market) and `serve` on a
// store imported from a generated file (70 reports for pagination, reports whose script tries
// to navigate away, and no market data at all: every provider points at a closed loopback
// port). Nothing leaves 127.0.0.1.
//
// Env: CR_BIN (default target/debug/crypto-report), CHROMIUM (default /usr/bin/chromium),
// CR_SHOTS (where the PDFs go, default target/browser-shots). Needs pdftoppm and pdftotext
// (poppler-utils; scripts/install-test-deps installs them) for the print checks.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';
import { earlierToday, openPage, processes, sleep } from './servers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(process.env.CR_BIN || path.join(ROOT, 'target', 'debug', 'crypto-report'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.CR_SHOTS || path.join(ROOT, 'target', 'browser-shots');
const SUITE_TIMEOUT_MS = 360_000;
const TEST_TIMEOUT_MS = 90_000;
const WAIT_MS = 10_000;

const DESKTOP = { viewport: { width: 1366, height: 900 } };
const MOBILE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };


// ------------------------------------------------------------------------------ servers

const { servers, scratch, start, guard, finish } = processes(BIN, 'cr-reader-');

// A loopback port with nothing listening: every provider call is refused at once.
async function closedPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

// Reports whose script tries to take the tab somewhere else, one way each.
const NAVIGATORS = {
  'location-href': "location.href = '/robots.txt';",
  'location-replace': "location.replace('/robots.txt');",
  'window-open-self': "window.open('/robots.txt', '_self');",
  'meta-refresh': "var m = document.createElement('meta'); m.httpEquiv = 'refresh'; m.content = '0;url=/robots.txt'; document.head.appendChild(m);",
  'history-back': 'history.back();',
};

function prose(n, lang) {
  return lang === 'vi'
    ? `<p>Thị trường phiên số ${n} diễn biến ổn định với khối lượng giao dịch vừa phải. Bitcoin dao động quanh vùng giá quen thuộc của tuần.</p>`
    : `<p>The market in session ${n} moved steadily on moderate trading volume. Bitcoin held around its usual range for the week.</p>`;
}

function fixture() {
  const lines = [];
  const day = (i) => new Date(Date.UTC(2026, 0, 1, 8) + i * 86_400_000).toISOString();
  let id = 1;
  for (const [name, js] of Object.entries(NAVIGATORS)) {
    const chart = '<div id="nav-chart-container" class="chart-container"></div>';
    lines.push({
      id,
      html_content: `<section id="s"><h2>Điều hướng ${name}</h2><div class="report-card">${prose(id, 'vi')}${chart}</div></section>`,
      css_content: null,
      js_content: `function initializeAllVisuals_report() { createGauge(document.getElementById('nav-chart-container'), 40, {}); }\nsetTimeout(function () { ${js} }, 300);`,
      html_content_en: null,
      js_content_en: null,
      created_at: day(id),
    });
    id += 1;
  }
  for (; id <= 70; id += 1) {
    lines.push({
      id,
      html_content: `<section id="s"><h2>Tổng quan</h2><div class="report-card">${prose(id, 'vi')}</div></section>`,
      css_content: null,
      js_content: null,
      html_content_en: id % 5 === 0 ? null : `<section id="s"><h2>Overview</h2><div class="report-card">${prose(id, 'en')}</div></section>`,
      js_content_en: null,
      created_at: day(id),
    });
  }
  return lines;
}

let demo = null;
let empty = null; // `serve`: the fixture reports, no market data
let browser = null;
const problems = [];

guard('reader', SUITE_TIMEOUT_MS);

before(async () => {
  demo = await start(['demo', '--listen', '127.0.0.1:0'], { CR_DEMO_INTERVAL_MS: '500' });
  const data = path.join(scratch, 'store');
  const file = path.join(scratch, 'reports.jsonl');
  fs.writeFileSync(file, fixture().map((r) => JSON.stringify(r)).join('\n'));
  execFileSync(BIN, ['import', '--from', file, '--data-dir', data], { cwd: scratch, stdio: 'pipe', timeout: 30_000 });
  const dead = `http://127.0.0.1:${await closedPort()}`;
  empty = await start(['serve', '--listen', '127.0.0.1:0', '--data-dir', data,
    '--coingecko-url', dead, '--coinmarketcap-url', dead, '--binance-url', dead,
    '--alternative-me-url', dead, '--taapi-url', dead, '--finnhub-url', dead]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}, { timeout: 90_000 });

after(() => finish(browser), { timeout: 30_000 });

const open = (options = {}) => openPage(browser, problems, { ...DESKTOP, ...options }, WAIT_MS);

// The dashboard has data (any snapshot) and, on report pages, the frame has its height.
async function settled(page) {
  await page.waitForFunction(() => {
    const status = document.querySelector('.mk-status');
    const frame = document.getElementById('report-frame');
    const dataIn = status && ['live', 'polling', 'nodata'].includes(status.dataset.status)
      && document.querySelector('.mk-updated, .mk-trouble');
    return dataIn && (!frame || frame.style.height !== '');
  }, null, { timeout: WAIT_MS });
}

// ------------------------------------------------------------------------------ 3. in place

test('3. a tick changes the numbers in place: nodes, selection and focus survive', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    await page.goto(`${demo.base}/?lang=en`);
    await page.waitForSelector('#market-mount .mk-status[data-status="live"]');
    await page.waitForFunction(() => /\d/.test(document.querySelector('#market-mount [data-field="btc_price_usd"]')?.textContent || ''));
    // Select the BTC price, as a reader about to copy it; focus a link in the dashboard bar.
    const selected = await page.evaluate(() => {
      window.__cards = Array.from(document.querySelectorAll('#market-mount .mk-card'));
      window.__eth = document.querySelector('#market-mount [data-field="eth_price_usd"]');
      const price = document.querySelector('#market-mount [data-field="btc_price_usd"]').firstChild;
      const range = document.createRange();
      range.selectNodeContents(price);
      document.getSelection().removeAllRanges();
      document.getSelection().addRange(range);
      return document.getSelection().toString();
    });
    const eth = await page.textContent('#market-mount [data-field="eth_price_usd"]');
    // Several ticks later (the demo ticks every 500 ms) the other numbers have moved...
    await page.waitForFunction((before) => document.querySelector('#market-mount [data-field="eth_price_usd"]').textContent !== before, eth);
    await sleep(1_500);
    const after = await page.evaluate(() => ({
      sameCards: Array.from(document.querySelectorAll('#market-mount .mk-card')).every((c, i) => c === window.__cards[i]),
      sameValue: document.querySelector('#market-mount [data-field="eth_price_usd"]') === window.__eth,
      selection: document.getSelection().toString(),
      collapsed: document.getSelection().isCollapsed,
      live: document.querySelectorAll('[aria-live], [role="status"], [role="alert"], [role="log"], [role="marquee"], [role="timer"]').length,
    }));
    assert.equal(after.sameCards, true, 'the cards were rebuilt');
    assert.equal(after.sameValue, true, 'the value elements were rebuilt');
    assert.equal(after.collapsed, false, 'the selection was lost');
    assert.equal(after.selection, selected, 'the selected price changed under the selection');
    assert.equal(after.live, 0, 'a live region announces ticks nobody asked for');
    // Released, the price catches up.
    await page.evaluate(() => document.getSelection().removeAllRanges());
    await page.waitForFunction((was) => document.querySelector('#market-mount [data-field="btc_price_usd"]').textContent !== was, selected);
  } finally {
    await context.close();
  }
});

// ------------------------------------------------------------------------------ 4. no data

test('4. without data the dashboard says so: failing sources, since when, unavailable', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    await page.goto(`${empty.base}/?lang=en`);
    await page.waitForSelector('#market-mount .mk-status[data-status="nodata"]');
    const bar = await page.textContent('#market-mount .mk-bar');
    assert.doesNotMatch(bar, /\bLive\b/, bar);
    assert.doesNotMatch(bar, /stale values are marked/i, bar);
    // The first answer of /health may come while the first attempts still run: the page asks
    // again until it can name the failing providers.
    await page.waitForFunction(() => /Coin prices: CoinGecko, Binance/.test(document.querySelector('#market-mount .mk-trouble')?.textContent || ''), null, { timeout: 20_000 });
    const trouble = await page.textContent('#market-mount .mk-trouble');
    assert.match(trouble, /Coin prices: CoinGecko, Binance since \d{2}:\d{2}/, trouble);
    assert.match(trouble, /Fear & Greed: alternative\.me since \d{2}:\d{2}/, trouble);
    // No Finnhub key: the indices were never tried, so they are neither failing nor shown.
    assert.doesNotMatch(trouble, /indices|configured/i, trouble);
    assert.equal(await page.locator('#market-mount .mk-indices').count(), 0);
    const labels = await page.$$eval('#market-mount .mk-gauge-label', (els) => els.map((e) => e.textContent.trim()));
    assert.deepEqual(labels, ['unavailable', 'unavailable']);
    assert.match(await page.textContent('#market-mount .mk-spark-caption'), /unavailable/);
    assert.equal(await page.locator('#market-mount .mk-needle:not(.mk-hide)').count(), 0, 'a needle points at no value');
    // The report page's strip says the same.
    await page.goto(`${empty.base}/crypto_report/70?lang=en`);
    await page.waitForSelector('#market-cards .mk-status[data-status="nodata"]');
  } finally {
    await context.close();
  }
});

test('4. a stale value shows when it was fetched, and the bar which source fails since when', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    const fetched = await earlierToday(20 * 60_000);
    const hhmm = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Ho_Chi_Minh', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(fetched);
    const stale = { fetched_at: fetched.toISOString(), stale: true, source: 'coingecko' };
    const fresh = { fetched_at: new Date().toISOString(), stale: false, source: 'coingecko' };
    await page.routeWebSocket(/\/ws(\?|$)/, (ws) => ws.close());
    await page.route('**/api/crypto/dashboard-summary', (route) => route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({
        btc_price_usd: 90000, btc_change_24h: 1.2, eth_price_usd: 3000, market_cap_usd: 3.1e12, volume_24h_usd: 1e11,
        btc_market_cap_percentage: 58, eth_market_cap_percentage: 12, fng_value: 50, rsi_14: 50,
        us_stock_indices: { SPY: { price: 600, change_percent: 0.5 } },
        partial_failure: true, last_updated: new Date().toISOString(),
        freshness: { btc_price_usd: stale, eth_price_usd: stale, market_cap_usd: fresh, fng_value: fresh, rsi_14: fresh, 'us_stock_indices.SPY': fresh },
      }),
    }));
    await page.route('**/health', (route) => route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({ uptime_seconds: 3600, market: { groups: { prices: { errors: ['coingecko: timed out', 'binance: HTTP 451'], last_success: fetched.toISOString(), complete: false } } } }),
    }));
    await page.goto(`${demo.base}/?lang=en`);
    await page.waitForFunction(() => /CoinGecko/.test(document.querySelector('#market-mount .mk-trouble')?.textContent || ''));
    const title = await page.textContent('#market-mount .mk-btc .mk-card-title');
    assert.ok(title.includes(`stale · value of ${hhmm}`), title);
    const trouble = await page.textContent('#market-mount .mk-trouble');
    assert.ok(trouble.includes(`Coin prices: CoinGecko, Binance since ${hhmm}`), trouble);
    assert.doesNotMatch(trouble, /Fear|RSI|indices|Market cap/, 'groups with fresh values are not listed');
    assert.notEqual(await page.getAttribute('#market-mount .mk-status', 'data-status'), 'nodata');
  } finally {
    await context.close();
  }
});

// ------------------------------------------------------------------------------ 5. CLS

test('5. nothing moves once shown: layout shift at most 0.05 on every page', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const pages = ['/', '/crypto_report/107', '/crypto_reports_list'];
  for (const [name, size] of [['desktop', DESKTOP], ['mobile', MOBILE]]) {
    const { context, page } = await open(size);
    await context.addInitScript(() => {
      if (window !== window.top) return;
      window.__shifts = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          if (!e.hadRecentInput) {
            window.__shifts.push({
              value: e.value,
              nodes: e.sources.map((s) => (s.node && s.node.nodeType === 1 ? `${s.node.localName}#${s.node.id}.${s.node.className}` : '?')),
            });
          }
        }
      }).observe({ type: 'layout-shift', buffered: true });
    });
    try {
      for (const p of pages) {
        await page.goto(demo.base + p);
        if (p !== '/crypto_reports_list') await settled(page);
        await sleep(1_200);
        const shifts = await page.evaluate(() => window.__shifts);
        const cls = shifts.reduce((sum, s) => sum + s.value, 0);
        t.diagnostic(`${name} ${p}: CLS ${cls.toFixed(3)}`);
        assert.ok(cls <= 0.05, `${name} ${p}: layout shift ${cls.toFixed(3)} > 0.05: ${JSON.stringify(shifts)}`);
      }
    } finally {
      await context.close();
    }
  }
});

// ------------------------------------------------------------------------------ 6. first screen

test('6. the reading comes first: the latest report in the first screen, the report before the market', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const bottomOf = (page, sel) => page.$eval(sel, (el) => el.getBoundingClientRect().bottom + window.scrollY);
  const topOf = (page, sel) => page.$eval(sel, (el) => el.getBoundingClientRect().top + window.scrollY);
  {
    const { context, page } = await open(DESKTOP);
    await page.goto(`${demo.base}/`);
    const bottom = await bottomOf(page, '.headline-card p[data-en]');
    t.diagnostic(`desktop home: the latest report's summary ends at ${Math.round(bottom)} px`);
    assert.ok(bottom <= 900, `desktop: the latest report's summary ends at ${bottom}px, below the 900px screen`);
    await context.close();
  }
  {
    const { context, page } = await open(MOBILE);
    await page.goto(`${demo.base}/`);
    const bottom = await bottomOf(page, '.headline-card p[data-en]');
    t.diagnostic(`mobile home: the latest report's summary ends at ${Math.round(bottom)} px`);
    assert.ok(bottom <= 844 * 1.5, `mobile: the latest report's summary ends at ${bottom}px`);
    await page.goto(`${demo.base}/crypto_report/107`);
    await settled(page);
    const frame = await topOf(page, '#report-frame');
    const market = await topOf(page, '#market-cards');
    t.diagnostic(`mobile report: frame at ${Math.round(frame)} px, market at ${Math.round(market)} px`);
    assert.ok(frame < 844, `mobile: the report starts at ${frame}px, below the first screen`);
    assert.ok(frame < market, 'mobile: the market strip comes before the report');
    await context.close();
  }
});

// ------------------------------------------------------------------------------ 7. language

// Every text a reader or a screen reader meets outside the report itself.
function pageTexts() {
  const out = [document.title];
  const meta = document.querySelector('meta[name="description"]');
  if (meta) out.push(meta.getAttribute('content'));
  for (const el of document.querySelectorAll('[aria-label], [title], [alt]')) {
    for (const a of ['aria-label', 'title', 'alt']) if (el.hasAttribute(a)) out.push(el.getAttribute(a));
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest('script, [hidden], [lang="vi"]') || !el.getClientRects().length) continue;
    if (n.data.trim()) out.push(n.data.trim());
  }
  return out;
}

test('7. switching to English leaves no Vietnamese behind', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    const strings = async () => page.$eval('#i18n-strings', (el) => JSON.parse(el.textContent));
    for (const url of [`${demo.base}/crypto_report/106`, `${demo.base}/`, `${empty.base}/crypto_reports_list?page=3`]) {
      await page.goto(url);
      if (!url.includes('list')) await settled(page);
      const { vi, en } = await strings();
      const english = new Set(Object.values(en));
      const vietnamese = Object.values(vi).filter((s) => !english.has(s) && /[^\x00-\x7f]|Trang|Báo/.test(s));
      await page.click('#lang-toggle');
      await page.waitForFunction(() => document.documentElement.lang === 'en');
      await sleep(300);
      const texts = await page.evaluate(pageTexts);
      const left = texts.filter((s) => vietnamese.some((v) => s.includes(v)) || /\b(Trang|Báo cáo|Thị trường)\b/.test(s));
      assert.deepEqual(left, [], `${url}: Vietnamese left after the switch`);
      const head = await page.evaluate(() => ({
        title: document.title,
        titleEn: document.querySelector('title').dataset.en,
        description: document.querySelector('meta[name="description"]').content,
        descriptionEn: document.querySelector('meta[name="description"]').dataset.en,
        frame: document.getElementById('report-frame')?.title,
        pagination: document.querySelector('.pagination')?.getAttribute('aria-label'),
      }));
      assert.equal(head.title, head.titleEn);
      assert.equal(head.description, head.descriptionEn);
      if (head.frame !== undefined) assert.equal(head.frame, en.report_frame_title);
      if (head.pagination !== undefined) assert.equal(head.pagination, en.pagination);
      await page.click('#lang-toggle'); // back, for the next page's starting point
      await page.waitForFunction(() => document.documentElement.lang === 'vi');
    }
    // A Vietnamese-only report in an English list: labelled, and marked as Vietnamese.
    await page.goto(`${demo.base}/?lang=en`);
    const card = page.locator('.report-item', { has: page.locator('a[href="/crypto_report/103"]') });
    assert.equal(await card.locator('.vi-only').isVisible(), true, 'no "Vietnamese only" label');
    assert.equal(await card.locator('.report-item-excerpt').getAttribute('lang'), 'vi');
  } finally {
    await context.close();
  }
});

// ------------------------------------------------------------------------------ 8. one row

test('8. at 390 px the header and the pagination take one row, in both languages', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open(MOBILE);
  try {
    for (const lang of ['vi', 'en']) {
      await page.goto(`${empty.base}/crypto_reports_list?page=3&lang=${lang}`);
      const header = await page.$eval('.site-header', (el) => el.getBoundingClientRect().height);
      assert.ok(header <= 64, `${lang}: the header is ${header}px tall`);
      for (const sel of ['.header-row', '.pagination']) {
        const rows = await page.$$eval(`${sel} > *`, (els) => els.filter((e) => e.getClientRects().length)
          .map((e) => Math.round(e.getBoundingClientRect().top)));
        const spread = Math.max(...rows) - Math.min(...rows);
        assert.ok(spread <= 8, `${lang}: ${sel} wraps (tops ${rows.join(', ')})`);
      }
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${lang}: the page is ${overflow}px wider than the screen`);
      // The brand still has a name for screen readers.
      assert.ok((await page.textContent('.brand')).trim().length > 0, 'the brand link has no name');
    }
  } finally {
    await context.close();
  }
});

// ------------------------------------------------------------------------------ 9. axe

test('9. no serious or critical accessibility violations (axe), both themes and languages', { timeout: 150_000 }, async (t) => {
  const targets = ['/', '/crypto_report/107', '/crypto_reports_list', '/crypto_report/999999', '/crypto_report/107/pdf'];
  const found = [];
  for (const scheme of ['light', 'dark']) {
    for (const lang of ['vi', 'en']) {
      const { context, page } = await open({ colorScheme: scheme });
      try {
        for (const p of targets) {
          await page.goto(`${demo.base}${p}${p.includes('?') ? '&' : '?'}lang=${lang}`);
          if (p === '/' || p === '/crypto_report/107') await settled(page);
          if (p.endsWith('/pdf')) await page.waitForSelector('#report-root .chart-container svg');
          await sleep(400); // colour transitions and the first flash of moved values end
          await page.evaluate(() => document.querySelectorAll('.mk-tick-up, .mk-tick-down').forEach((e) => e.getAnimations({ subtree: true }).forEach((a) => a.finish())));
          const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
          for (const v of result.violations) {
            if (v.impact !== 'serious' && v.impact !== 'critical') continue;
            const where = v.nodes.slice(0, 3).map((n) => `${n.target.join(' ').slice(-80)} ${n.failureSummary.split('\n')[1]?.trim().slice(0, 120) || ''}`);
            found.push(`${scheme}/${lang} ${p}: ${v.id} (${v.impact}, ${v.nodes.length}×): ${where.join(' | ')}`);
          }
        }
      } finally {
        await context.close();
      }
    }
  }
  t.diagnostic(`${targets.length * 4} pages scanned`);
  assert.deepEqual(found, []);
});

// ------------------------------------------------------------------------------ 10. print

function pdfPages(file) {
  const prefix = `${file}-page`;
  execFileSync('pdftoppm', ['-r', '24', '-gray', file, prefix], { timeout: 60_000 });
  const dir = path.dirname(file);
  return fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(prefix)) && f.endsWith('.pgm')).sort()
    .map((f) => {
      // PGM (P5): "P5\n<w> <h>\n255\n" then one byte per pixel.
      const buf = fs.readFileSync(path.join(dir, f));
      const header = buf.toString('latin1', 0, 40).split(/\s+/);
      const [w, h] = [Number(header[1]), Number(header[2])];
      const pixels = buf.subarray(buf.length - w * h);
      // Content rows between the page margins (14 mm sides and top, 16 mm bottom).
      const top = Math.ceil((h * 14) / 297);
      const bottom = Math.floor((h * (297 - 16)) / 297);
      const left = Math.ceil((w * 14) / 210);
      const right = Math.floor((w * (210 - 14)) / 210);
      let last = top;
      for (let y = top; y < bottom; y += 1) {
        for (let x = left; x < right; x += 1) {
          if (pixels[y * w + x] < 200) { last = y; break; }
        }
      }
      return { file: f, filled: (last - top) / (bottom - top) };
    });
}

test('10. print: full A4 pages, numbered and dated, charts drawn for paper on any screen', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const counts = {};
  const widths = {};
  const runs = [
    ['desktop', 'en', { viewport: { width: 1280, height: 900 } }, 'Page', 'November 21, 2026'],
    ['phone', 'en', MOBILE, 'Page', 'November 21, 2026'],
    ['desktop', 'vi', { viewport: { width: 1280, height: 900 } }, 'Trang', '21 tháng 11, 2026'],
  ];
  for (const [name, lang, size, word, date] of runs) {
    const { context, page } = await open(size);
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    try {
      await page.goto(`${demo.base}/crypto_report/107/pdf?lang=${lang}`);
      await page.waitForSelector('#report-root .chart-container svg');
      const back = await page.getAttribute('#back-link', 'href');
      assert.equal(back, `/crypto_report/107?lang=${lang}`, 'no link back to the report');
      widths[`${name}-${lang}`] = await page.$$eval('#report-root .chart-container svg',
        (svgs) => svgs.map((s) => s.getAttribute('width') || s.viewBox.baseVal.width));
      // A chart stays on one page with what introduces it and its caption (issue 14), so a page
      // may end early when the next one starts with such a chart: these are the first words
      // that may open a page after a short one (what introduces the chart, or the heading kept
      // with its card).
      const wholeStarts = await page.$$eval('#report-root .report-lang:not([hidden]) .report-card > .chart-container', (charts) => {
        const words = (el) => el.innerText.replace(/[^\p{L}\p{N}\p{P}\s]/gu, '').replace(/\s+/g, ' ').trim()
          .split(' ').slice(0, 3).join(' ');
        const starts = [];
        for (const chart of charts) {
          if (chart.previousElementSibling) starts.push(words(chart.previousElementSibling));
          let el = chart.parentElement;
          while (!el.previousElementSibling && el.parentElement && !el.parentElement.classList.contains('report-lang')) el = el.parentElement;
          const before = el.previousElementSibling;
          if (before && /^H[1-6]$/.test(before.tagName)) starts.push(words(before));
        }
        return starts.filter(Boolean);
      });
      const file = path.join(SHOTS, `reader-print-107-${lang}-${name}.pdf`);
      fs.writeFileSync(file, await page.pdf({ format: 'A4', printBackground: true, timeout: 30_000 }));
      const pages = pdfPages(file);
      counts[`${name}-${lang}`] = pages.length;
      t.diagnostic(`${name} ${lang}: ${pages.length} pages, filled ${pages.map((p) => Math.round(p.filled * 100)).join('/')} %`);
      const text = execFileSync('pdftotext', ['-layout', file, '-'], { timeout: 30_000 }).toString();
      const perPage = text.split('\f').filter((s) => s.trim());
      assert.equal(perPage.length, pages.length);
      // Short pages: only before a whole chart card that did not fit, and never half empty.
      const opening = (body) => body.split('\n').map((l) => l.replace(/\s+/g, ' ').trim()).find(Boolean) || '';
      const gaps = pages.slice(0, -1)
        .map((p, i) => ({ ...p, next: opening(perPage[i + 1]) }))
        .filter((p) => p.filled < 1 / 2 || (p.filled < 2 / 3 && !wholeStarts.some((w) => p.next.includes(w))));
      assert.deepEqual(gaps, [], `${name} ${lang}: pages more than a third empty (chart cards open with: ${wholeStarts.join(' | ')})`);
      perPage.forEach((body, i) => {
        assert.match(body, new RegExp(`${word} ${i + 1} / ${perPage.length}`), `${name} ${lang}: page ${i + 1} has no number`);
        assert.ok(body.includes(date), `${name} ${lang}: page ${i + 1} has no date`);
      });
      assert.match(perPage[0], /\/crypto_report\/107/, `${name} ${lang}: the first page does not say where the report lives`);
      assert.deepEqual(errors, [], `${name} ${lang}: console errors in the print view`);
    } finally {
      await context.close();
    }
  }
  assert.equal(counts['phone-en'], counts['desktop-en'], 'printing from a phone gives another document');
  assert.deepEqual(widths['phone-en'], widths['desktop-en'], 'charts were drawn for the screen, not for paper');
});

// ------------------------------------------------------------------------------ print guard

test('the print view: a report whose script navigates cannot take the tab away', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { context, page } = await open();
  try {
    let id = 1;
    for (const name of Object.keys(NAVIGATORS)) {
      await page.goto(`${empty.base}/`); // something to go back to
      const url = `${empty.base}/crypto_report/${id}/pdf`;
      await page.goto(url);
      const noticed = await page.waitForSelector('#print-blocked:not([hidden])', { timeout: 5_000 }).then(() => true, () => false);
      await sleep(800);
      t.diagnostic(`${name}: ${page.url()}${noticed ? ' (source dropped, notice shown)' : ''}`);
      assert.equal(page.url(), url, `${name}: the report took the tab to ${page.url()}`);
      // A report that navigated its source is shown as served, with the notice.
      if (name !== 'history-back') assert.equal(noticed, true, `${name}: no notice that the charts were dropped`);
      assert.equal(await page.locator('#report-root .report-lang').count(), 1, `${name}: the report is gone`);
      assert.equal(context.pages().length, 1, `${name}: another page opened`);
      id += 1;
    }
  } finally {
    await context.close();
  }
});

// ------------------------------------------------------------------------------ 11. smaller

test('11. one word for "Neutral"; Vietnamese times read date first', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    // A snapshot with both gauges neutral, served to the page while its socket is refused.
    const now = new Date().toISOString();
    await page.routeWebSocket(/\/ws(\?|$)/, (ws) => ws.close());
    await page.route('**/api/crypto/dashboard-summary', (route) => route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({ btc_price_usd: 90000, fng_value: 50, fng_value_classification: 'Neutral', rsi_14: 50, last_updated: now, freshness: {} }),
    }));
    await page.goto(`${demo.base}/?lang=vi`);
    await page.waitForFunction(() => /\d/.test(document.querySelector('#market-mount .mk-gauge-value')?.textContent || ''));
    const [fng, rsi] = await page.$$eval('#market-mount .mk-gauge-label', (els) => els.map((e) => e.textContent.trim()));
    assert.equal(fng, rsi, `"Neutral" is "${fng}" in one card and "${rsi}" in the other`);
    assert.equal(fng, 'Trung lập');
    assert.match(await page.textContent('#market-mount .mk-updated time'), /^\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2} \(UTC\+7\)$/);
  } finally {
    await context.close();
  }
});

test('no page errors; no server errors', { timeout: 5_000 }, () => {
  assert.deepEqual(problems, []);
  for (const s of servers) {
    assert.deepEqual(s.log.filter((l) => /\bERROR\b/.test(l)), []);
  }
});
