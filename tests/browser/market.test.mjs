// The live market dashboard in headless Chromium against a real `crypto-report demo` with a
// fast simulated feed: pushed updates change the numbers without a reload (and carry only
// what changed, which the page merges), both languages format numbers as readers expect,
// report pages get the compact cards, and a lost server turns the connection indicator from
// live to reconnecting.
//
// Env: CR_BIN (default target/debug/crypto-report), CHROMIUM (default /usr/bin/chromium).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.CR_BIN || path.join(ROOT, 'target', 'debug', 'crypto-report');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const START_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 60_000;
const WAIT_MS = 10_000;

let server = null; // { proc, base, cwd, log }
let browser = null;
const problems = [];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const alive = (proc) => proc && proc.exitCode === null && proc.signalCode === null;

async function startServer() {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cr-market-'));
  const proc = spawn(BIN, ['demo', '--listen', '127.0.0.1:0'], {
    cwd,
    env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1', CR_DEMO_INTERVAL_MS: '400' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  server = { proc, base: '', cwd, log };
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start:\n${log.slice(-20).join('\n')}`)), START_TIMEOUT_MS);
    proc.once('error', (e) => { clearTimeout(timer); reject(e); });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`demo exited (${code}):\n${log.slice(-20).join('\n')}`)); });
    for (const stream of [proc.stderr, proc.stdout]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        log.push(line);
        if (log.length > 2000) log.splice(0, 500);
        const m = /listening.*address=127\.0\.0\.1:(\d+)/.exec(line);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      });
    }
  });
  server.base = `http://127.0.0.1:${port}`;
}

async function stopServer() {
  if (!server) return;
  const { proc } = server;
  if (alive(proc)) {
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(8_000)]);
    if (alive(proc)) proc.kill('SIGKILL');
  }
  proc.stdout.destroy();
  proc.stderr.destroy();
}

process.on('exit', () => {
  if (server && alive(server.proc)) {
    try { process.kill(server.proc.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

async function newPage(lang = 'vi') {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Nothing leaves 127.0.0.1.
  await context.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort());
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  await page.goto(`${server.base}/?lang=${lang}`);
  return { context, page };
}

const text = (page, selector) => page.locator(selector).first().textContent();

before(async () => {
  await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, { timeout: START_TIMEOUT_MS + 10_000 });

after(async () => {
  if (browser) await browser.close();
  await stopServer();
  if (server) fs.rmSync(server.cwd, { recursive: true, force: true });
});

test('a pushed update changes the numbers without a reload', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await newPage('en');
  await page.waitForSelector('.mk-status[data-status="live"]', { timeout: WAIT_MS });
  await page.evaluate(() => { window.__sameDocument = true; });
  const field = '#market-mount [data-field="btc_price_usd"]';
  const first = await text(page, field);
  assert.match(first, /^\$\d{1,3}(,\d{3})*\.\d{2}$/);
  await page.waitForFunction(([sel, before]) => document.querySelector(sel)?.textContent !== before,
    [field, first], { timeout: WAIT_MS });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page reloaded');
  // Everything the dashboard promises is on the page.
  assert.equal(await page.locator('#market-mount .mk-demo').isVisible(), true, 'demo badge');
  assert.equal(await page.locator('#market-mount svg.mk-gauge').count(), 2);
  assert.equal(await page.locator('#market-mount svg.mk-doughnut').count(), 1);
  assert.equal(await page.locator('#market-mount svg.mk-spark').count(), 1);
  assert.match(await text(page, '#market-mount [data-field="market_cap_usd"]'), /^\$\d+(\.\d+)?T$/);
  for (const sym of ['eth', 'sol', 'bnb', 'xrp', 'ada', 'link']) {
    assert.match(await text(page, `#market-mount [data-field="${sym}_price_usd"]`), /^\$[\d,.]+$/, sym);
  }
  for (const sym of ['dia', 'spy', 'qqqm']) {
    assert.match(await text(page, `#market-mount [data-field="${sym}_price"]`), /^\$[\d,.]+$/, sym);
  }
  assert.match(await text(page, '#market-mount .mk-updated'), /\(UTC\+7\)/);
  await context.close();
});

test('updates carry only what changed and the page merges them', { timeout: TEST_TIMEOUT_MS }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort());
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const messages = [];
  page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    try { messages.push(JSON.parse(payload)); } catch { /* not JSON */ }
  }));
  await page.goto(`${server.base}/?lang=en`);
  await page.waitForSelector('.mk-status[data-status="live"]', { timeout: WAIT_MS });
  const updates = () => messages.filter((m) => m.type === 'dashboard_update');
  const deadline = Date.now() + WAIT_MS;
  while (updates().length < 3 && Date.now() < deadline) await sleep(100);
  const data = messages.find((m) => m.type === 'dashboard_data');
  assert.ok(data, 'no dashboard_data');
  assert.ok(updates().length >= 3, `only ${updates().length} updates`);
  // The demo feed moves prices, never the badge or the source list.
  const partial = updates().filter((m) => !('demo' in m.data) && !('data_sources' in m.data));
  assert.ok(partial.length > 0, 'every update carried the whole snapshot');
  assert.ok(updates().every((m) => typeof m.data.btc_price_usd === 'number'));
  // What the page shows is the merge: a price from the updates next to values only the
  // greeting carried.
  const usd = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const field = '#market-mount [data-field="btc_price_usd"]';
  let shown = '';
  while (Date.now() < deadline + WAIT_MS) {
    shown = await text(page, field);
    if (updates().some((m) => `$${usd.format(m.data.btc_price_usd)}` === shown)) break;
    await sleep(50);
  }
  assert.ok(updates().some((m) => `$${usd.format(m.data.btc_price_usd)}` === shown), `shown ${shown}`);
  assert.equal(await page.locator('#market-mount .mk-demo').isVisible(), true, 'demo badge');
  assert.match(await text(page, '#market-mount [data-field="spy_price"]'), /^\$[\d,.]+$/);
  assert.equal(await page.locator('#market-mount svg.mk-spark').count(), 1);
  // The sparkline's window moves by splices, not whole, and the page draws the merged array:
  // its line is the one the merge of every message so far gives (drawn as market-view.js
  // draws it).
  const splices = updates().filter((m) => Array.isArray(m.data.btc_sparkline?.$splice));
  assert.ok(splices.length > 0, 'the sparkline came whole in every update');
  const merged = () => {
    let spark = data.data.btc_sparkline;
    for (const m of updates()) {
      const next = m.data.btc_sparkline;
      if (Array.isArray(next)) spark = next;
      else if (next) spark = spark.slice(next.$splice[0], next.$splice[0] + next.$splice[1]).concat(next.$splice[2]);
    }
    return spark;
  };
  const lineOf = (spark) => {
    const values = spark.map((p) => p[p.length - 1]);
    const lo = Math.min(...values); const hi = Math.max(...values); const span = hi - lo || 1;
    return values.map((v, i) => {
      const x = (i * 300) / (values.length - 1); const y = 3 + ((hi - v) * (64 - 6)) / span;
      return `${i ? 'L' : 'M'} ${x.toFixed(1)} ${y.toFixed(1)}`;
    }).join(' ');
  };
  let drawn = '';
  let expected = '';
  const until = Date.now() + WAIT_MS;
  while (Date.now() < until) {
    drawn = await page.locator('#market-mount .mk-spark-line').getAttribute('d');
    expected = lineOf(merged());
    if (drawn === expected) break;
    await sleep(50);
  }
  assert.equal(drawn, expected);
  await context.close();
});

test('the language switches live, with Vietnamese number units', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await newPage('en');
  await page.waitForSelector('.mk-status[data-status="live"]', { timeout: WAIT_MS });
  assert.equal((await text(page, '.mk-status')).trim(), 'Live');
  await page.click('#lang-toggle');
  await page.waitForFunction(() => document.querySelector('.mk-status')?.textContent.trim() === 'Trực tiếp',
    null, { timeout: WAIT_MS });
  assert.match(await text(page, '#market-mount [data-field="market_cap_usd"]'), /^\d+(,\d+)? nghìn tỷ USD$/);
  assert.match(await text(page, '#market-mount [data-field="volume_24h_usd"]'), /^\d+(,\d+)? tỷ USD$/);
  assert.match(await text(page, '#market-mount [data-field="btc_price_usd"]'), /^\d{1,3}(\.\d{3})*,\d{2} USD$/);
  assert.match(await text(page, '#market-mount .mk-demo'), /Dữ liệu demo/i);
  await context.close();
});

test('report pages show the compact cards', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await newPage('vi');
  await page.goto(`${server.base}/crypto_report`);
  await page.waitForSelector('#market-cards .mk-mini', { timeout: WAIT_MS });
  assert.equal(await page.locator('#market-cards .mk-mini').count(), 15);
  assert.equal(await page.locator('#market-cards .mk-demo').isVisible(), true);
  await context.close();
});

test('numbers and ages are written as Intl writes them, without building a formatter', { timeout: TEST_TIMEOUT_MS }, async () => {
  // Building an Intl formatter loads locale data: on a phone the first one was the longest
  // task of the page's start. The page writes numbers and ages itself, the same text.
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  await context.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort());
  await context.addInitScript(() => {
    window.__built = [];
    for (const name of ['NumberFormat', 'RelativeTimeFormat', 'DateTimeFormat']) {
      const Real = Intl[name];
      Intl[name] = function (...args) { window.__built.push(name); return new Real(...args); };
      Intl[name].prototype = Real.prototype;
    }
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  for (const lang of ['vi', 'en']) {
    await page.goto(`${server.base}/?lang=${lang}`);
    await page.waitForSelector('.mk-status[data-status="live"]', { timeout: WAIT_MS });
    await page.waitForSelector('#market-mount [data-field="btc_price_usd"]', { timeout: WAIT_MS });
    assert.deepEqual(await page.evaluate(() => window.__built), [], `${lang}: no Intl formatter built`);
    const ages = await page.locator('time[data-format="age"]').allTextContents();
    assert.ok(ages.length > 0, 'the home page shows an age');
    for (const age of ages) {
      assert.match(age, lang === 'vi' ? /^\d+ (phút|giờ|ngày|tháng|năm) trước$/ : /^(1 (minute|hour|day|month|year)|\d+ (minutes|hours|days|months|years)) ago$/);
    }
  }
  // js/numbers.js beside Intl in this browser, for every shape the pages and the report
  // runtime use, on values that round on a tie (1.005), cross a unit (999,999.999) or need
  // many digits.
  const mismatches = await page.evaluate(() => {
    const N = window.crNumbers;
    const values = [0, 1, -1, 0.5, 1.005, 2.675, 0.0285, 0.1235, 99.995, 999.9999, 999999, 999.996e6,
      1234.5, 90000, 1234567.891, 0.000123456, 1e-7, 0.9996, 2.89e12, 1e15, 1.2345e18, -3.4e6, -0.0001];
    for (let i = 0; i < 300; i += 1) values.push(Math.sin(i * 7.3) * 10 ** ((i % 20) - 8));
    for (let i = 0; i < 100; i += 1) values.push(Math.round(Math.abs(Math.sin(i)) * 1e5) / 1000 + 0.0005);
    const out = [];
    // A negative value that rounds to zero is written without the sign.
    const check = (ours, intl, what) => { if (ours !== intl.replace(/^-(?=[0.,]+%?$)/, '')) out.push([what, ours, intl]); };
    for (const v of values) {
      for (const [lang, locale] of [['vi', 'vi-VN'], ['en', 'en-US']]) {
        for (const [min, max] of [[0, 0], [0, 2], [2, 2], [4, 4], [6, 6], [1, 3]]) {
          check(N.fixed(v, min, max, lang), new Intl.NumberFormat(locale, { minimumFractionDigits: min, maximumFractionDigits: max }).format(v), `fixed ${v} ${min}-${max} ${lang}`);
        }
        check(N.percent(v, 1, lang), new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 }).format(v), `percent ${v} ${lang}`);
        check(N.significant(v, 3, lang), new Intl.NumberFormat(locale, { maximumSignificantDigits: 3 }).format(v), `significant ${v} ${lang}`);
        check(N.compact(v, 2, lang), new Intl.NumberFormat(locale, { notation: 'compact', maximumFractionDigits: 2 }).format(v), `compact ${v} ${lang}`);
      }
    }
    return out;
  });
  assert.deepEqual(mismatches.slice(0, 5), []);
  await context.close();
});

test('the live dot and the flashes of moved values animate only transform and opacity', { timeout: TEST_TIMEOUT_MS }, async () => {
  // Anything else (a box-shadow pulse, a background flash) restyles and repaints the page on
  // every frame while it runs, and with ticks every second it always runs: the main thread
  // is never idle and a phone spends its time on the dashboard instead of the reader.
  const { context, page } = await newPage('en');
  await page.waitForSelector('.mk-status[data-status="live"]', { timeout: WAIT_MS });
  const field = '#market-mount [data-field="btc_price_usd"]';
  await page.waitForSelector(`${field}.mk-tick-up, ${field}.mk-tick-down`, { timeout: WAIT_MS });
  const seen = await page.evaluate(() => document.getAnimations().map((a) => ({
    name: a.animationName || '',
    target: a.effect && a.effect.target ? a.effect.target.className.baseVal ?? a.effect.target.className : '',
    pseudo: a.effect ? a.effect.pseudoElement || '' : '',
    props: a.effect ? [...new Set(a.effect.getKeyframes().flatMap((k) => Object.keys(k)))]
      .filter((k) => !['offset', 'computedOffset', 'easing', 'composite'].includes(k)) : [],
  })));
  for (const a of seen) {
    for (const prop of a.props) {
      assert.ok(['transform', 'opacity'].includes(prop), `${a.name} on ${a.target}${a.pseudo} animates ${prop}`);
    }
  }
  assert.ok(seen.some((a) => a.name === 'mk-pulse'), `the live dot pulses: ${JSON.stringify(seen)}`);
  assert.ok(seen.some((a) => a.name === 'mk-flash'), `a moved value flashes: ${JSON.stringify(seen)}`);
  await context.close();
});

test('the indicator leaves "live" when the server goes away, keeping the last numbers', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { context, page } = await newPage('en');
  await page.waitForSelector('.mk-status[data-status="live"]', { timeout: WAIT_MS });
  await stopServer();
  await page.waitForSelector('.mk-status[data-status="reconnecting"], .mk-status[data-status="polling"]',
    { timeout: WAIT_MS });
  assert.match(await text(page, '#market-mount [data-field="btc_price_usd"]'), /^\$[\d,.]+$/);
  await context.close();
});

test('no page errors from the dashboard', { timeout: 5_000 }, () => {
  assert.deepEqual(problems, []);
});
