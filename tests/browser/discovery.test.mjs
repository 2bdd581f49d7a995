// Finding reports and seeing what happened since them, in headless Chromium: search from the
// header of any page (accents optional, dates, languages), the "since this report" panel fed by
// a fake provider's daily history (and "unknown" when that history fails), the archive by
// month, both feeds, and no serious accessibility violation on the new pages. Servers: the
// demo, and `serve` on the bundled samples imported from data/sample-reports.jsonl, its
// providers pointed at a fake on 127.0.0.1 that serves the recorded fixtures. Nothing leaves
// 127.0.0.1.
//
// Env: CR_BIN (default target/debug/crypto-report), CHROMIUM (default /usr/bin/chromium).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';
import { openPage, processes, sleep } from './servers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(process.env.CR_BIN || path.join(ROOT, 'target', 'debug', 'crypto-report'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'providers');
const SAMPLES = path.join(ROOT, 'data', 'sample-reports.jsonl');
const SUITE_TIMEOUT_MS = 240_000;
const TEST_TIMEOUT_MS = 90_000;
const WAIT_MS = 10_000;

const DESKTOP = { viewport: { width: 1366, height: 900 } };
const MOBILE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };


// ------------------------------------------------------------------------------ servers

const fakes = [];
const { servers, scratch, start, guard, finish } = processes(BIN, 'cr-discovery-');

// The providers, answering from the recorded fixtures; with `historyFails`, the daily
// history endpoints answer 500 (the live endpoints still work).
async function fakeProviders({ historyFails }) {
  const hits = {};
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://fake');
    const q = url.searchParams;
    let file = null;
    let history = false;
    switch (url.pathname) {
      case '/cg/api/v3/simple/price': file = 'coingecko_simple_price.json'; break;
      case '/cg/api/v3/global': file = 'coingecko_global.json'; break;
      case '/bn/api/v3/ticker/24hr': file = 'binance_ticker_24hr.json'; break;
      case '/bn/api/v3/klines':
        history = q.has('startTime');
        file = history ? `binance_klines_history_${(q.get('symbol') || '').toLowerCase()}.json` : 'binance_klines_btcusdt_1d.json';
        break;
      case '/am/fng/':
        history = q.get('limit') !== '1';
        file = history ? 'alternative_me_fng_history.json' : 'alternative_me_fng.json';
        break;
      default: break;
    }
    const key = `${url.pathname}${history ? ' history' : ''}`;
    hits[key] = (hits[key] || 0) + 1;
    if (!file || !fs.existsSync(path.join(FIXTURES, file)) || (history && historyFails)) {
      res.writeHead(file ? 500 : 404, { 'content-type': 'application/json' });
      res.end('{"error":"unavailable"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(fs.readFileSync(path.join(FIXTURES, file)));
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  fakes.push(srv);
  return { base: `http://127.0.0.1:${srv.address().port}`, hits };
}

// `serve` on the samples, imported into a store of its own, every provider at `fake`.
async function serveSamples(fake, name) {
  const data = path.join(scratch, name);
  execFileSync(BIN, ['import', '--from', SAMPLES, '--data-dir', data], { cwd: scratch, stdio: 'pipe', timeout: 30_000 });
  return start(['serve', '--listen', '127.0.0.1:0', '--data-dir', data,
    '--coingecko-url', `${fake.base}/cg`, '--coinmarketcap-url', `${fake.base}/cmc`, '--binance-url', `${fake.base}/bn`,
    '--alternative-me-url', `${fake.base}/am`, '--taapi-url', `${fake.base}/taapi`, '--finnhub-url', `${fake.base}/fh`]);
}

let demo = null;
let withHistory = null;
let withoutHistory = null;
let browser = null;
const problems = [];

guard('discovery', SUITE_TIMEOUT_MS);

before(async () => {
  demo = await start(['demo', '--listen', '127.0.0.1:0'], { CR_DEMO_INTERVAL_MS: '1000' });
  withHistory = await serveSamples(await fakeProviders({ historyFails: false }), 'good');
  withoutHistory = await serveSamples(await fakeProviders({ historyFails: true }), 'bad');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}, { timeout: 90_000 });

after(() => finish(browser, fakes), { timeout: 30_000 });

const open = (options = {}) => openPage(browser, problems, { ...DESKTOP, ...options }, WAIT_MS);

// ------------------------------------------------------------------------------ 1. search

test('1. search from the header of any page: accents optional, marked snippets, dates, both languages', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const device of [DESKTOP, MOBILE]) {
    const { context, page } = await open(device);
    try {
      await page.goto(`${demo.base}/crypto_reports_list?lang=vi`);
      if (device === DESKTOP) {
        await page.fill('#site-search-q', 'lam phat');
        await page.press('#site-search-q', 'Enter');
      } else {
        // A phone's header keeps one row: its magnifier opens the search page, whose field
        // has the focus.
        assert.equal(await page.locator('#site-search-q').isVisible(), false);
        await page.click('.site-search button');
        await page.waitForURL(/\/search\?q=$/);
        assert.equal(await page.evaluate(() => document.activeElement?.id), 'search-q');
        await page.keyboard.type('lam phat');
        await page.keyboard.press('Enter');
      }
      await page.waitForURL(/\/search\?q=lam\+phat/);
      const hits = page.locator('.search-hit');
      assert.equal(await hits.count(), 4);
      const ids = await hits.evaluateAll((els) => els.map((e) => e.querySelector('a').getAttribute('href')).sort());
      assert.deepEqual(ids, ['/crypto_report/101', '/crypto_report/102', '/crypto_report/106', '/crypto_report/107']);
      // Vietnamese readers see the Vietnamese snippet, the words marked as one, as written.
      const marks = await page.locator('.search-snippet[data-show-lang="vi"]:visible mark').allTextContents();
      const folded = (m) => m.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
      assert.ok(marks.length >= 4 && marks.every((m) => folded(m) === 'lam phat'), marks.join(','));
      assert.ok(marks.includes('lạm phát'), marks.join(','));
      // The language switch shows the English snippets (where the English text matches)
      // without a reload.
      await page.click('#lang-toggle');
      await page.waitForFunction(() => document.documentElement.lang === 'en');
      assert.equal(await page.locator('.search-snippet[data-show-lang="vi"]:visible').count(), 0);
      assert.equal(await page.locator('.search-snippet[data-show-lang="en"]:visible').count(), 4);
      assert.equal(await page.locator('#site-search-q').getAttribute('placeholder'), 'Search reports…');
      // A date range, in the page's form.
      await page.fill('#search-from', '2026-11-16');
      await page.fill('#search-to', '2026-11-20');
      await page.click('.search-form button[type="submit"]');
      await page.waitForURL(/from=2026-11-16/);
      assert.equal(await page.locator('.search-hit').count(), 1);
      assert.equal(await page.locator('.search-hit a').getAttribute('href'), '/crypto_report/106');
    } finally {
      await context.close();
    }
  }
});

// ------------------------------------------------------------------------------ 2. since

function row(page, field) {
  return page.locator(`#since tr[data-field="${field}"]`);
}

test('2. since this report: the market at publication from the history, now and the change', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    // The history task fetches at start; a page rendered before it is rendered again after.
    const deadline = Date.now() + 20_000;
    for (;;) {
      await page.goto(`${withHistory.base}/crypto_report/106?lang=en`);
      if (await row(page, 'btc_price_usd').getAttribute('data-then')) break;
      assert.ok(Date.now() < deadline, 'the history never reached the page');
      await sleep(300);
    }
    const then = async (f) => (await row(page, f).locator('.since-then').textContent()).trim();
    assert.match(await then('btc_price_usd'), /^\$95,728\.52start of Nov 20, 2026/);
    assert.match(await then('fng_value'), /^34 · Fear/);
    assert.equal(await then('market_cap_usd'), 'unknown');
    assert.equal(await then('btc_market_cap_percentage'), 'unknown');
    // The market now comes live from the dashboard's snapshot, and the change beside it.
    // (The first poll of the providers may still be under way on a busy machine.)
    await page.waitForFunction(() => /\d/.test(document.querySelector('#since tr[data-field="btc_price_usd"] .since-now')?.textContent || ''), null, { timeout: 30_000 });
    const now = async (f) => (await row(page, f).locator('.since-now').textContent()).trim();
    const change = async (f) => (await row(page, f).locator('.since-change').textContent()).trim();
    assert.equal(await now('btc_price_usd'), '$84,250.00');
    assert.equal(await change('btc_price_usd'), '−11.99%');
    assert.equal(await row(page, 'btc_price_usd').locator('.since-down').count(), 1);
    assert.equal(await now('fng_value'), '38 · Fear');
    assert.equal(await change('fng_value'), '+4 pts');
    assert.equal(await now('market_cap_usd'), '$2.89T');
    assert.equal(await change('market_cap_usd'), '—', 'no change without a value at publication');
    // In Vietnamese, without a reload.
    await page.click('#lang-toggle');
    await page.waitForFunction(() => document.documentElement.lang === 'vi');
    assert.match(await then('btc_price_usd'), /^95\.728,52 USD/);
    assert.equal(await now('btc_price_usd'), '84.250,00 USD');
    assert.equal(await change('fng_value'), '+4 điểm');
    assert.equal(await then('market_cap_usd'), 'không rõ');
  } finally {
    await context.close();
  }
});

test('2b. since this report: a failing history leaves one line saying nothing is known', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    await page.goto(`${withoutHistory.base}/crypto_report/106?lang=en`);
    assert.equal(await page.locator('#since tr').count(), 0, 'a table of "unknown"');
    assert.equal((await page.textContent('#since')).replace(/\s+/g, ' ').trim(), 'Since this report: not known at publication.');
  } finally {
    await context.close();
  }
});

// ------------------------------------------------------------------------------ 3. archive

test('3. the archive by month from the list, and both feeds', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    await page.goto(`${demo.base}/crypto_reports_list?lang=en`);
    await page.click('.list-total a[href="/archive"]');
    await page.waitForURL(/\/archive$/);
    await page.click('a[href="/archive/2026/11"]');
    await page.waitForURL(/\/archive\/2026\/11$/);
    assert.equal(await page.locator('.report-item').count(), 7);
    assert.match(await page.textContent('h1'), /November 2026/);
    for (const [feed, lang] of [['/rss.xml', 'vi'], ['/rss-en.xml', 'en']]) {
      const res = await page.request.get(`${demo.base}${feed}`);
      assert.equal(res.status(), 200);
      const parsed = await page.evaluate((xml) => {
        const doc = new DOMParser().parseFromString(xml, 'application/xml');
        return {
          error: doc.querySelector('parsererror') !== null,
          lang: doc.querySelector('channel > language')?.textContent,
          items: doc.querySelectorAll('item').length,
        };
      }, await res.text());
      assert.deepEqual(parsed, { error: false, lang, items: 7 }, feed);
    }
    const og = await page.evaluate(() => document.querySelector('meta[property="og:image"]')?.content);
    // The English list shares the English site card.
    assert.match(og, /\/card\.png\?lang=en$/);
  } finally {
    await context.close();
  }
});

// ------------------------------------------------------------------------------ 4. axe

test('4. no serious or critical accessibility violations on the new pages (axe), both themes and languages', { timeout: 150_000 }, async (t) => {
  const targets = [
    [demo, '/search?q=lam+phat'],
    [demo, '/search'],
    [demo, '/archive'],
    [demo, '/archive/2026/11'],
    [withHistory, '/crypto_report/106'],
  ];
  const found = [];
  for (const scheme of ['light', 'dark']) {
    for (const lang of ['vi', 'en']) {
      const { context, page } = await open({ colorScheme: scheme });
      try {
        for (const [server, p] of targets) {
          await page.goto(`${server.base}${p}${p.includes('?') ? '&' : '?'}lang=${lang}`);
          if (p.startsWith('/crypto_report/')) {
            await page.waitForFunction(() => /\d/.test(document.querySelector('#since .since-now')?.textContent || ''));
          }
          await sleep(400);
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

test('no page error anywhere in this suite', () => {
  assert.deepEqual(problems, []);
});
