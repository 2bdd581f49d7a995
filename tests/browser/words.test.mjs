// Vietnamese words in headless Chromium: a search of several syllables marks the phrase as a
// whole and lists reports holding the syllables only apart last, a hit found in English shows
// its English snippet, bad dates answer the search page itself with one line, and reports in
// the generator's template show their lead, not their header block. Server: `serve` on the
// fixtures tests/fixtures/syllables and tests/fixtures/generator-template, imported; every
// provider pointed at a closed port on 127.0.0.1. Nothing leaves 127.0.0.1.
//
// Env: CR_BIN (default target/debug/crypto-report), CHROMIUM (default /usr/bin/chromium).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { bound, processes, sleep } from './servers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(process.env.CR_BIN || path.join(ROOT, 'target', 'debug', 'crypto-report'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SUITE_TIMEOUT_MS = 240_000;
const TEST_TIMEOUT_MS = 90_000;
const WAIT_MS = 10_000;

const DESKTOP = { viewport: { width: 1366, height: 900 } };
const MOBILE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

const { servers, scratch, start, stop } = processes(BIN, 'cr-words-');
let server = null;
let browser = null;
const problems = [];

const watchdog = bound('words', servers, SUITE_TIMEOUT_MS);

before(async () => {
  const data = path.join(scratch, 'data');
  for (const fixture of ['syllables', 'generator-template']) {
    const jsonl = path.join(scratch, `${fixture}.jsonl`);
    execFileSync(path.join(ROOT, 'scripts', 'build-samples'), ['--samples', path.join(ROOT, 'tests', 'fixtures', fixture), '--out', jsonl], { stdio: 'pipe', timeout: 30_000 });
    execFileSync(BIN, ['import', '--from', jsonl, '--data-dir', data], { cwd: scratch, stdio: 'pipe', timeout: 30_000 });
  }
  // Port 9 on loopback: nothing listens, every provider call is refused at once.
  const closed = 'http://127.0.0.1:9';
  server = await start(['serve', '--listen', '127.0.0.1:0', '--data-dir', data,
    '--coingecko-url', closed, '--coinmarketcap-url', closed, '--binance-url', closed,
    '--alternative-me-url', closed, '--taapi-url', closed, '--finnhub-url', closed]);
  // The index catches up with the store at start.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const health = await (await fetch(`${server.base}/health`)).json();
    if (health.search && !health.search.catching_up && health.search.documents === 9) break;
    assert.ok(Date.now() < deadline, `the search index never caught up: ${JSON.stringify(health.search)}`);
    await sleep(200);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}, { timeout: 90_000 });

after(async () => {
  try {
    if (browser) await Promise.race([browser.close(), sleep(10_000)]);
  } finally {
    for (const s of servers) await stop(s);
    fs.rmSync(scratch, { recursive: true, force: true });
    clearTimeout(watchdog);
  }
  assert.deepEqual(problems, []);
}, { timeout: 30_000 });

async function open(options = {}) {
  const context = await browser.newContext({ locale: 'vi-VN', timezoneId: 'Asia/Ho_Chi_Minh', colorScheme: 'light', ...DESKTOP, ...options });
  context.setDefaultTimeout(WAIT_MS);
  await context.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort('blockedbyclient'));
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror on ${page.url()}: ${e.message}`));
  return { context, page };
}

// What the reader sees of each hit, in page order: its report, whether it is listed after the
// "apart" line, the marks of the snippet shown and that snippet's language.
async function seen(page) {
  return page.evaluate(() => {
    const apartLine = document.querySelector('.search-apart');
    return [...document.querySelectorAll('.search-hit')].map((hit) => {
      const shown = [...hit.querySelectorAll('.search-snippet')].find((p) => p.offsetParent !== null);
      return {
        id: hit.querySelector('a').getAttribute('href').replace('/crypto_report/', ''),
        apart: !!apartLine && !!(apartLine.compareDocumentPosition(hit) & Node.DOCUMENT_POSITION_FOLLOWING),
        marks: shown ? [...shown.querySelectorAll('mark')].map((m) => m.textContent) : null,
        lang: shown ? (shown.getAttribute('lang') || document.documentElement.lang) : null,
      };
    });
  });
}

const byId = (hits) => [...hits].sort((a, b) => Number(a.apart) - Number(b.apart) || a.id.localeCompare(b.id));

test('1. several syllables: the phrase marked whole, syllables apart listed last, accents as typed', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const device of [DESKTOP, MOBILE]) {
    const { context, page } = await open(device);
    try {
      await page.goto(`${server.base}/search?lang=vi`);
      await page.fill('#search-q', 'lam phat');
      await page.press('#search-q', 'Enter');
      await page.waitForURL(/\/search\?q=lam\+phat/);
      const hits = await seen(page);
      assert.deepEqual(byId(hits), [
        { id: '201', apart: false, marks: ['Lạm phát'], lang: 'vi' },
        { id: '203', apart: false, marks: ['làm phát'], lang: 'vi' },
        { id: '206', apart: false, marks: ['lạm phát', 'Lạm phát'], lang: 'vi' },
        { id: '202', apart: true, marks: [], lang: 'vi' },
      ]);
      assert.equal(hits.at(-1).id, '202', 'syllables apart rank below every phrase');
      assert.ok(await page.locator('.search-apart').isVisible());
      // A mark covers the phrase: one element, both syllables, the space between them.
      const box = await page.locator('.search-snippet:visible mark').first().boundingBox();
      assert.ok(box && box.width > 30, `mark ${JSON.stringify(box)}`);

      // With accents: only that word; quoted: only side by side.
      await page.fill('#search-q', 'lạm phát');
      await page.press('#search-q', 'Enter');
      await page.waitForURL(/q=l%E1%BA%A1m/);
      assert.deepEqual(byId(await seen(page)), [
        { id: '201', apart: false, marks: ['Lạm phát'], lang: 'vi' },
        { id: '206', apart: false, marks: ['lạm phát', 'Lạm phát'], lang: 'vi' },
      ]);
      assert.equal(await page.locator('.search-apart').count(), 0);
      await page.fill('#search-q', '"lam phat"');
      await page.press('#search-q', 'Enter');
      await page.waitForURL(/q=%22lam/);
      assert.deepEqual((await seen(page)).map((h) => h.id).sort(), ['201', '203', '206']);
      assert.equal(await page.locator('.search-apart').count(), 0);
    } finally {
      await context.close();
    }
  }
});

test('2. a hit found through the other language shows that language\'s snippet, marked', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    await page.goto(`${server.base}/search?q=inflation&lang=vi`);
    assert.deepEqual(byId(await seen(page)), [
      { id: '201', apart: false, marks: ['Inflation'], lang: 'en' },
      { id: '206', apart: false, marks: ['inflation', 'inflation'], lang: 'en' },
    ]);
    // And the other way round, switching language without a reload.
    await page.goto(`${server.base}/search?q=l%E1%BA%A1m+ph%C3%A1t&lang=vi`);
    await page.click('#lang-toggle');
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    assert.deepEqual(byId(await seen(page)), [
      { id: '201', apart: false, marks: ['Lạm phát'], lang: 'vi' },
      { id: '206', apart: false, marks: ['lạm phát', 'Lạm phát'], lang: 'vi' },
    ]);
  } finally {
    await context.close();
  }
});

test('3. reversed or invalid dates: the search page with the words kept and one line', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const device of [DESKTOP, MOBILE]) {
    const { context, page } = await open(device);
    try {
      await page.goto(`${server.base}/search?lang=vi`);
      await page.fill('#search-q', 'lạm phát');
      await page.fill('#search-from', '2026-11-20');
      await page.fill('#search-to', '2026-11-01');
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().includes('/search?')),
        page.click('.search-form button[type="submit"]'),
      ]);
      assert.equal(response.status(), 400);
      // The response is in; the page it answers is being shown.
      const error = page.locator('#search-error');
      await error.waitFor({ state: 'visible' });
      assert.equal(await error.textContent(), 'Ngày bắt đầu (20 tháng 11, 2026) sau ngày kết thúc (1 tháng 11, 2026): hãy đổi chỗ hai ngày hoặc sửa một ngày.');
      assert.equal(await page.locator('[role="alert"]').count(), 1);
      assert.equal(await page.inputValue('#search-q'), 'lạm phát');
      assert.equal(await page.inputValue('#search-from'), '2026-11-20');
      assert.equal(await page.inputValue('#search-to'), '2026-11-01');
      assert.equal(await page.locator('#search-from').getAttribute('aria-invalid'), 'true');
      assert.equal(await page.locator('.search-hit').count(), 0);
      assert.equal(await page.locator('h1').first().textContent(), 'Tìm kiếm', 'the search page, not an error page');
      await page.click('#lang-toggle');
      await page.waitForFunction(() => document.documentElement.lang === 'en');
      assert.equal(await error.textContent(), 'The start date (November 20, 2026) is after the end date (November 1, 2026): swap them or change one.');
      // Fixing the dates searches.
      await page.fill('#search-from', '2026-10-01');
      await page.fill('#search-to', '2026-10-31');
      await page.click('.search-form button[type="submit"]');
      await page.waitForURL(/from=2026-10-01/);
      assert.equal(await page.locator('#search-error').count(), 0);
      assert.equal(await page.locator('.search-hit').count(), 2);
    } finally {
      await context.close();
    }
  }
  // A date no date field would send (a hand-made link) is named in the line.
  const { context, page } = await open();
  try {
    const response = await page.goto(`${server.base}/search?q=bitcoin&from=2026-13-01&lang=en`);
    assert.equal(response.status(), 400);
    assert.equal(await page.locator('#search-error').textContent(), 'The start date “2026-13-01” is not a date: enter it as year-month-day (YYYY-MM-DD).');
    assert.equal(await page.inputValue('#search-q'), 'bitcoin');
  } finally {
    await context.close();
  }
});

test('4. reports in the generator\'s template: their lead in the list and on the home page, never the header block', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await open();
  try {
    for (const p of ['/crypto_reports_list?lang=vi', '/?lang=vi']) {
      await page.goto(`${server.base}${p}`);
      const text = await page.locator('main').innerText();
      assert.ok(text.includes('Tổng vốn hóa thị trường đi ngang quanh 2,3 nghìn tỷ USD'), `${p}: ${text}`);
      assert.ok(text.includes('Bitcoin giữ vững vùng 64.000 USD sau phiên biến động mạnh'), `${p}: ${text}`);
      for (const byline of ['Chuyên gia Phân tích Thị trường', 'Báo Cáo Phân Tích Thị Trường Crypto']) {
        assert.ok(!text.includes(byline), `${p} shows the header block: ${byline}`);
      }
    }
    await page.goto(`${server.base}/crypto_report/301?lang=en`);
    assert.equal(await page.locator('meta[name="description"]').getAttribute('content'),
      'Total market capitalisation is flat at about $2.3 trillion, and trading volume is down 12% from yesterday. Flows into the spot ETFs slowed but stayed positive.');
    assert.equal((await page.locator('main h1').first().textContent()).trim(), 'Bitcoin holds the $64,000 area after a volatile session');
  } finally {
    await context.close();
  }
});
