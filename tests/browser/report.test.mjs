// What a reader sees, checked in headless Chromium against a real `crypto-report demo`.
//
// The suite starts the binary itself on 127.0.0.1:0, drives Debian's /usr/bin/chromium through
// playwright-core (no downloaded browser), and never lets a request leave 127.0.0.1: every
// other URL is aborted at the browser context and recorded, which is what check (g) asserts.
//
// Env: CR_BIN (default target/debug/crypto-report), CHROMIUM (default /usr/bin/chromium),
// CR_SHOTS (screenshot folder, default target/browser-shots).

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
const SHOTS = process.env.CR_SHOTS || path.join(ROOT, 'target', 'browser-shots');

const SUITE_TIMEOUT_MS = 180_000;
const START_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 60_000;
const NAV_TIMEOUT_MS = 15_000;
const WAIT_MS = 10_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------------------ the server

let server = null; // { proc, port, base, log: string[] }

function stripAnsi(text) {
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}

async function startServer() {
  try {
    fs.accessSync(BIN, fs.constants.X_OK);
  } catch {
    throw new Error(`no executable at ${BIN}: run \`cargo build\` first or set CR_BIN`);
  }
  // A scratch working directory, so a developer's .env cannot change the demo.
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cr-browser-'));
  const proc = spawn(BIN, ['demo', '--listen', '127.0.0.1:0'], {
    cwd,
    env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  const state = { proc, port: 0, base: '', log, cwd };
  server = state;

  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`demo did not log "listening address=127.0.0.1:PORT" within ${START_TIMEOUT_MS / 1000} s; `
        + `last output:\n${log.slice(-20).join('\n')}`));
    }, START_TIMEOUT_MS);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${BIN}: ${err.message}`));
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`demo exited early (code ${code}, signal ${signal}); output:\n${log.slice(-20).join('\n')}`));
    });
    // Both streams are drained for the whole run, so the server never blocks on a full pipe.
    for (const stream of [proc.stderr, proc.stdout]) {
      readline.createInterface({ input: stream }).on('line', (raw) => {
        const line = stripAnsi(raw);
        log.push(line);
        if (log.length > 2000) log.splice(0, 500);
        const m = /listening.*address=127\.0\.0\.1:(\d+)/.exec(line);
        if (m && !state.port) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    }
  });
  state.port = await listening;
  state.base = `http://127.0.0.1:${state.port}`;
  return state;
}

function alive(proc) {
  return proc && proc.exitCode === null && proc.signalCode === null;
}

async function stopServer() {
  if (!server) return;
  const { proc, cwd } = server;
  if (alive(proc)) {
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(5_000)]);
    if (alive(proc)) {
      proc.kill('SIGKILL');
      await Promise.race([exited, sleep(2_000)]);
    }
  }
  // A grandchild holding the pipes open must not keep this process alive.
  proc.stdout.destroy();
  proc.stderr.destroy();
  fs.rmSync(cwd, { recursive: true, force: true });
}

// Last resort if the runner dies mid-suite: never leave the demo running.
process.on('exit', () => {
  if (server && alive(server.proc)) {
    try {
      process.kill(server.proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

async function getJson(pathname) {
  const res = await fetch(server.base + pathname, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, `GET ${pathname} -> ${res.status}`);
  return res.json();
}

// ------------------------------------------------------------------------------ bookkeeping

function isLocalUrl(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return true; // not a URL the network stack would fetch
  }
  if (['data:', 'blob:', 'about:', 'chrome-error:', 'javascript:'].includes(url.protocol)) return true;
  return url.hostname === '127.0.0.1';
}

const offHost = []; // requests the browser tried to send somewhere other than 127.0.0.1
const blockedByPolicy = []; // off-host loads a CSP refused before they left the browser
const problems = []; // console errors (CSP violations included) and page errors, with their origin
const popups = [];
let hostile = null; // { id } of the sandbox test report
let browser = null;

function pathOf(raw) {
  try {
    const url = new URL(raw);
    return url.pathname;
  } catch {
    return raw;
  }
}

// A problem is the hostile report's own (expected) doing when it comes from its frame, or
// when its page refused an off-host load the report asked for. Anything else is ours.
function isHostileDoing(p) {
  if (!hostile) return false;
  const framePath = `/crypto_report/${hostile.id}/frame`;
  if (p.frameUrl && (pathOf(p.frameUrl) === framePath || p.frameUrl.startsWith('chrome-error:'))) return true;
  if (pathOf(p.pageUrl) !== `/crypto_report/${hostile.id}`) return false;
  if (p.kind === 'csp') return !isLocalUrl(p.blockedURI || '');
  if (p.kind === 'console' && /Content Security Policy/.test(p.text)) {
    const urls = p.text.match(/(?:https?:)?\/\/[^\s'"]+/g) || [];
    return urls.length > 0 && urls.every((u) => !isLocalUrl(u.startsWith('//') ? `http:${u}` : u));
  }
  return false;
}

function ownProblems(list = problems) {
  return list.filter((p) => !isHostileDoing(p));
}

function describeProblems(list) {
  return list.map((p) => {
    const where = `${pathOf(p.pageUrl)}${p.frameUrl && p.frameUrl !== p.pageUrl ? ` [frame ${p.frameUrl}]` : ''}`;
    if (p.kind === 'csp') {
      return `CSP violation: ${p.directive} blocked ${p.blockedURI || '(inline)'} `
        + `(${p.sourceFile || '?'}:${p.line || '?'} ${p.sample || ''}) on ${where}`;
    }
    return `${p.kind}: ${p.text} (${p.location || '?'}) on ${where}`;
  }).join('\n');
}

// Runs in every frame before any page script. It only records, and talks to nothing: a
// Playwright binding called from a frame is answered with a user-gesture evaluation, which
// would hand the sandboxed report a user activation (and so a pop-up past the blocker).
// Violations are read back at the end of a test (collectViolations), never from the hostile
// frame, whose violations are expected; Chromium also logs each one as a console error.
function initScript() {
  const seen = [];
  Object.defineProperty(window, '__crCsp', { value: seen });
  document.addEventListener('securitypolicyviolation', (e) => {
    if (seen.length < 200) {
      seen.push({
        documentURI: e.documentURI,
        blockedURI: e.blockedURI,
        directive: e.effectiveDirective || e.violatedDirective,
        sourceFile: e.sourceFile,
        line: e.lineNumber,
        sample: e.sample,
        disposition: e.disposition,
      });
    }
  }, true);
  // Intl formatters built by the page (the first loads locale data: ~100 ms on a phone).
  const built = [];
  Object.defineProperty(window, '__crIntl', { value: built });
  for (const name of ['NumberFormat', 'RelativeTimeFormat', 'DateTimeFormat']) {
    const Real = Intl[name];
    const counted = function (...args) { built.push(name); return new Real(...args); };
    counted.prototype = Real.prototype;
    Intl[name] = counted;
  }
  if (window === window.top) {
    // The theme at the moment <body> is first parsed (before first paint) and at
    // DOMContentLoaded: both must already be the remembered one.
    const mark = (key) => {
      const root = document.documentElement;
      window[key] = root ? root.getAttribute('data-theme') : null;
    };
    const observer = new MutationObserver(() => {
      if (document.body) {
        mark('__crThemeAtBody');
        observer.disconnect();
      }
    });
    observer.observe(document, { childList: true, subtree: true });
    document.addEventListener('DOMContentLoaded', () => mark('__crThemeAtDCL'), { capture: true, once: true });
  }
}

async function newContext(options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    locale: 'vi-VN',
    colorScheme: 'light',
    timezoneId: 'Asia/Ho_Chi_Minh',
    ...options,
  });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(NAV_TIMEOUT_MS);
  // Closed network: whatever is not 127.0.0.1 is recorded and aborted, never sent.
  await context.route((url) => !isLocalUrl(url.href), (route) => {
    const req = route.request();
    offHost.push({ url: req.url(), type: req.resourceType(), frame: safeFrameUrl(req) });
    return route.abort('blockedbyclient');
  });
  context.on('requestfailed', (req) => {
    if (!isLocalUrl(req.url()) && /csp/i.test(req.failure()?.errorText || '')) {
      blockedByPolicy.push({ url: req.url(), frame: safeFrameUrl(req) });
    }
  });
  await context.addInitScript(initScript);
  // newPage() announces the page it is about to open; any other page is a pop-up.
  context.__crExpected = 0;
  context.on('page', (page) => {
    if (context.__crExpected > 0) {
      context.__crExpected -= 1;
      return;
    }
    const entry = { opener: '', requests: [] };
    popups.push(entry);
    page.opener().then((o) => { entry.opener = o ? o.url() : '(none)'; }, () => {});
    page.on('request', (req) => entry.requests.push(req.url()));
  });
  return context;
}

function safeFrameUrl(req) {
  try {
    return req.frame().url();
  } catch {
    return '';
  }
}

async function newPage(context) {
  context.__crExpected += 1;
  const page = await context.newPage();
  page.__crProblems = [];
  page.__crFrameNavs = [];
  const push = (entry) => {
    problems.push(entry);
    page.__crProblems.push(entry);
  };
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const loc = msg.location() || {};
    push({
      kind: 'console',
      text: msg.text(),
      location: loc.url ? `${loc.url}:${loc.lineNumber}` : '',
      frameUrl: loc.url || '',
      pageUrl: page.url(),
    });
  });
  page.on('pageerror', (err) => {
    push({ kind: 'pageerror', text: String(err && err.stack ? err.stack : err), frameUrl: '', pageUrl: page.url() });
  });
  page.on('framenavigated', (frame) => {
    if (frame.parentFrame() === page.mainFrame()) page.__crFrameNavs.push(frame.url());
  });
  return page;
}

// Reads the securitypolicyviolation events each frame recorded. The hostile report's frame
// is skipped: evaluating there would hand it a user activation, and its violations are expected.
async function collectViolations(page) {
  for (const frame of page.frames()) {
    const url = frame.url();
    if (url.startsWith('chrome-error:') || url === 'about:blank') continue;
    if (hostile && pathOf(url) === `/crypto_report/${hostile.id}/frame`) continue;
    const seen = await frame.evaluate(() => (window.__crCsp || []).slice()).catch(() => []);
    for (const v of seen) {
      const entry = { kind: 'csp', ...v, frameUrl: url, pageUrl: page.url() };
      problems.push(entry);
      page.__crProblems.push(entry);
    }
  }
}

async function assertPageClean(page, what) {
  await collectViolations(page);
  const own = ownProblems(page.__crProblems);
  assert.equal(own.length, 0, `${what}: console errors / CSP violations from our own pages:\n${describeProblems(own)}`);
}

// ------------------------------------------------------------------------------ report frame helpers

const FRAME_PATH = /\/crypto_report\/\d+\/frame(\?|$)/;

// The report frame may only ever show about:blank and its own document: report content
// must not be able to navigate it (e.g. <meta http-equiv="refresh">).
function assertFrameStayed(page) {
  const stray = page.__crFrameNavs.find((u) => u !== 'about:blank' && !FRAME_PATH.test(u));
  assert.equal(stray, undefined,
    `the report frame was navigated away from its document to ${stray} (navigations: ${page.__crFrameNavs.join(' -> ')})`);
}

async function reportFrame(page) {
  const iframe = page.locator('iframe#report-frame');
  await iframe.waitFor({ state: 'attached', timeout: WAIT_MS });
  await page.waitForFunction(() => !!document.getElementById('report-frame')?.getAttribute('src'), null, { timeout: WAIT_MS });
  const handle = await iframe.elementHandle({ timeout: WAIT_MS });
  const deadline = Date.now() + NAV_TIMEOUT_MS;
  let frame = null;
  while (Date.now() < deadline) {
    assertFrameStayed(page);
    frame = await handle.contentFrame();
    if (frame && FRAME_PATH.test(frame.url())) break;
    await sleep(100);
  }
  assert.ok(frame && FRAME_PATH.test(frame.url()), `the report frame never loaded its document (url: ${frame?.url()})`);
  await frame.waitForLoadState('load', { timeout: NAV_TIMEOUT_MS });
  // The parent sizes the frame from its cr:height messages: once it has a height, the two
  // are talking (cr:ready comes first), so set-language / set-theme will be delivered.
  await page.waitForFunction(() => document.getElementById('report-frame').style.height !== '', null, { timeout: WAIT_MS });
  return frame;
}

// Every .chart-container in the given language div (or the visible one) holds an <svg>.
// (Duplicated rather than shared: page code may not eval, and the CSPs forbid it anyway.)
function chartState(l) {
  const div = l ? document.getElementById(`report-content-${l}`)
    : document.querySelector('.report-lang:not([hidden])');
  if (!div) return { missingDiv: true };
  const charts = Array.from(div.querySelectorAll('.chart-container'));
  return {
    lang: div.dataset.lang,
    total: charts.length,
    empty: charts.filter((c) => !c.querySelector('svg')).map((c) => c.id || c.className),
  };
}

async function waitForCharts(frame, lang, { minCharts = 0 } = {}) {
  try {
    await frame.waitForFunction(([l, min]) => {
      const div = l ? document.getElementById(`report-content-${l}`)
        : document.querySelector('.report-lang:not([hidden])');
      if (!div) return false;
      const charts = Array.from(div.querySelectorAll('.chart-container'));
      return charts.length >= min && charts.every((c) => c.querySelector('svg'));
    }, [lang, minCharts], { timeout: WAIT_MS });
  } catch (err) {
    const state = await frame.evaluate(chartState, lang).catch((e) => ({ error: e.message }));
    throw new Error(`charts not drawn as SVG within ${WAIT_MS / 1000} s: ${JSON.stringify(state)} (${err.message.split('\n')[0]})`);
  }
  return frame.evaluate(chartState, lang);
}

async function visibleLanguage(frame) {
  return frame.evaluate(() => {
    const shown = (id) => {
      const el = document.getElementById(id);
      return el ? !el.hidden && el.getClientRects().length > 0 : null;
    };
    return { vi: shown('report-content-vi'), en: shown('report-content-en') };
  });
}

async function sectionTitles(frame, lang) {
  return frame.evaluate((l) => {
    const div = document.getElementById(`report-content-${l}`);
    return Array.from(div ? div.querySelectorAll('section[id]') : [])
      .map((s) => (s.querySelector('h2')?.textContent || '').replace(/\s+/g, ' ').trim());
  }, lang);
}

async function tocTitles(page) {
  return page.$$eval('#toc-list a', (as) => as.map((a) => a.textContent.replace(/\s+/g, ' ').trim()));
}

async function waitForToc(page, expected) {
  try {
    await page.waitForFunction((want) => {
      const got = Array.from(document.querySelectorAll('#toc-list a')).map((a) => a.textContent.replace(/\s+/g, ' ').trim());
      return JSON.stringify(got) === JSON.stringify(want);
    }, expected, { timeout: WAIT_MS });
  } catch {
    assert.deepEqual(await tocTitles(page), expected, 'table of contents did not follow the frame');
  }
}

async function frameHeight(page) {
  return page.$eval('#report-frame', (el) => parseFloat(getComputedStyle(el).height));
}

// ------------------------------------------------------------------------------ the suite

let reports = []; // every report from /api/reports, newest first
let newest = null;
let rich = null; // a bilingual report with the most charts (not the hostile one)

const watchdog = setTimeout(() => {
  console.error(`browser suite exceeded ${SUITE_TIMEOUT_MS / 1000} s; giving up`);
  if (server && alive(server.proc)) server.proc.kill('SIGKILL');
  process.exit(1);
}, SUITE_TIMEOUT_MS);
watchdog.unref();

before(async () => {
  await startServer();
  for (let page = 1; page <= 50; page += 1) {
    const body = await getJson(`/api/reports?page=${page}`);
    reports.push(...body.reports);
    if (!body.pages || page >= body.pages || body.reports.length === 0) break;
  }
  assert.ok(reports.length > 0, 'the demo has no reports');
  reports.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  newest = reports[0];
  let best = -1;
  for (const r of reports) {
    const full = await getJson(`/api/reports/${r.id}`);
    const html = `${full.html_content || ''}${full.html_content_en || ''}`;
    if (/\bid="escape-results(-en)?"/.test(html)) {
      hostile = hostile || { id: r.id };
      continue;
    }
    const charts = (html.match(/class="[^"]*\bchart-container\b/g) || []).length;
    if (full.html_content_en && charts > best) {
      best = charts;
      rich = { id: r.id, charts };
    }
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // playwright-core turns Chromium's pop-up blocker off; a reader's browser has it on, and the
    // sandbox test report calls window.open() without a user gesture.
    ignoreDefaultArgs: ['--disable-popup-blocking'],
    timeout: 30_000,
  });
}, { timeout: 90_000 });

after(async () => {
  try {
    if (browser) await Promise.race([browser.close(), sleep(10_000)]);
  } finally {
    await stopServer();
    clearTimeout(watchdog);
  }
}, { timeout: 30_000 });

test('a. home page renders and links to the newest report', { timeout: TEST_TIMEOUT_MS }, async () => {
  const context = await newContext();
  try {
    const page = await newPage(context);
    const res = await page.goto(`${server.base}/`, { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'] || '', /text\/html/);
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'vi');
    assert.ok((await page.textContent('h1'))?.trim(), 'home has a heading');
    const links = await page.$$eval('a[href]', (as) => as.map((a) => a.getAttribute('href')));
    const newestPath = `/crypto_report/${newest.id}`;
    assert.ok(links.some((h) => h.split(/[?#]/)[0] === newestPath),
      `no link to the newest report ${newestPath}; links: ${links.join(' ')}`);
    await sleep(300); // late console errors from deferred scripts
    await assertPageClean(page, 'home');
  } finally {
    await context.close();
  }
});

test('b. report pages draw every chart, fill the TOC and size the frame', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  assert.ok(rich, 'no bilingual report with charts among the samples');
  const context = await newContext();
  try {
    for (const [url, minCharts] of [['/crypto_report', 0], [`/crypto_report/${rich.id}`, 1]]) {
      const page = await newPage(context);
      const res = await page.goto(server.base + url, { waitUntil: 'domcontentloaded' });
      assert.equal(res.status(), 200, `${url} status`);
      const sandbox = await page.$eval('iframe#report-frame', (el) => el.getAttribute('sandbox'));
      assert.ok(sandbox !== null, `${url}: the report frame has no sandbox attribute`);
      const tokens = sandbox.split(/\s+/);
      assert.ok(tokens.includes('allow-scripts'), `${url}: sandbox="${sandbox}" lacks allow-scripts`);
      assert.ok(!tokens.includes('allow-same-origin'), `${url}: sandbox="${sandbox}" must not allow-same-origin`);

      const frame = await reportFrame(page);
      const charts = await waitForCharts(frame, null, { minCharts });
      t.diagnostic(`${url}: ${charts.total} charts drawn in ${charts.lang}`);

      const toc = await tocTitles(page);
      assert.ok(toc.length >= 2, `${url}: TOC has ${toc.length} entries`);

      try {
        await page.waitForFunction(() => parseFloat(getComputedStyle(document.getElementById('report-frame')).height) > 600,
          null, { timeout: WAIT_MS });
      } catch {
        assert.fail(`${url}: the frame did not grow to fit its content (height ${await frameHeight(page)}px)`);
      }
      const contentHeight = await frame.evaluate(() => document.documentElement.getBoundingClientRect().height);
      const height = await frameHeight(page);
      assert.ok(height >= contentHeight - 2, `${url}: frame ${height}px is shorter than its content ${contentHeight}px`);
      assert.equal(await frame.evaluate(() => origin), 'null', `${url}: the frame's origin is not opaque`);
      // Numbers, percentages and compact units are written by js/numbers.js, not by Intl.
      assert.deepEqual(await frame.evaluate(() => window.__crIntl), [], `${url}: the frame built Intl formatters`);
      assert.deepEqual(await page.evaluate(() => window.__crIntl), [], `${url}: the page built Intl formatters`);
      await sleep(300);
      await assertPageClean(page, url);
      await page.close();
    }
  } finally {
    await context.close();
  }
});

test('c. the language switches without a reload and is remembered', { timeout: TEST_TIMEOUT_MS }, async () => {
  const context = await newContext();
  try {
    const page = await newPage(context);
    const url = `${server.base}/crypto_report/${rich.id}`;
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    const frame = await reportFrame(page);
    await waitForCharts(frame, 'vi', { minCharts: 1 });
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'vi', 'a vi-VN reader starts in Vietnamese');
    assert.deepEqual(await visibleLanguage(frame), { vi: true, en: false });

    const strings = await page.$eval('#i18n-strings', (el) => JSON.parse(el.textContent));
    const header = () => page.evaluate(() => ({
      title: document.querySelector('.report-header h1')?.textContent.trim(),
      titleEn: document.querySelector('.report-header h1')?.getAttribute('data-en'),
      toc: document.getElementById('toc-title')?.textContent.trim(),
      nav: document.querySelector('[data-i18n="nav_home"]')?.textContent.trim(),
    }));
    const before = await header();
    const viTitles = await sectionTitles(frame, 'vi');
    const enTitles = await sectionTitles(frame, 'en');
    assert.ok(enTitles.length >= 2, 'the English version has sections');
    assert.notDeepEqual(enTitles, viTitles, 'English section titles differ from the Vietnamese ones');
    await waitForToc(page, viTitles);

    await page.evaluate(() => { window.__marker = 1; });
    await page.click('#lang-toggle');
    await page.waitForFunction(() => document.documentElement.lang === 'en', null, { timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => window.__marker), 1, 'the page reloaded on a language switch');
    const afterEn = await header();
    assert.notEqual(afterEn.toc, before.toc, 'the TOC heading stayed Vietnamese');
    assert.equal(afterEn.toc, strings.en.toc);
    assert.equal(afterEn.nav, strings.en.nav_home);
    assert.equal(afterEn.title, afterEn.titleEn, 'the report title is the English one');

    try {
      await frame.waitForFunction(() => {
        const en = document.getElementById('report-content-en');
        const vi = document.getElementById('report-content-vi');
        return en && !en.hidden && (!vi || vi.hidden);
      }, null, { timeout: WAIT_MS });
    } catch {
      assert.fail(`the frame did not show the English content: ${JSON.stringify(await visibleLanguage(frame))}`);
    }
    assert.deepEqual(await visibleLanguage(frame), { vi: false, en: true });
    await waitForCharts(frame, 'en', { minCharts: 1 });
    await waitForToc(page, enTitles);
    assert.ok((await context.cookies()).some((c) => c.name === 'lang' && c.value === 'en'), 'no lang=en cookie');

    // And back.
    await page.click('#lang-toggle');
    await page.waitForFunction(() => document.documentElement.lang === 'vi', null, { timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => window.__marker), 1, 'the page reloaded on the switch back');
    assert.equal((await header()).toc, strings.vi.toc);
    await frame.waitForFunction(() => !document.getElementById('report-content-vi').hidden
      && document.getElementById('report-content-en').hidden, null, { timeout: WAIT_MS });
    await waitForCharts(frame, 'vi', { minCharts: 1 });
    await waitForToc(page, viTitles);

    // English again, then a reload: the server renders English straight away (cookie).
    await page.click('#lang-toggle');
    await page.waitForFunction(() => document.documentElement.lang === 'en', null, { timeout: WAIT_MS });
    const res = await page.reload({ waitUntil: 'domcontentloaded' });
    const html = await res.text();
    assert.match(html, /<html[^>]*\blang="en"/, 'after a reload the server did not render English');
    assert.equal(await page.evaluate(() => window.__marker), undefined, 'reload did not happen');
    const frame2 = await reportFrame(page);
    assert.match(frame2.url(), /[?&]lang=en\b/);
    assert.deepEqual(await visibleLanguage(frame2), { vi: false, en: true });
    await waitForCharts(frame2, 'en', { minCharts: 1 });
    await waitForToc(page, enTitles);
    await sleep(300);
    await assertPageClean(page, 'language switch');
  } finally {
    await context.close();
  }
});

test('d. the theme toggles, reaches the frame and is remembered without a flash', { timeout: TEST_TIMEOUT_MS }, async () => {
  const context = await newContext({ colorScheme: 'light' });
  try {
    const page = await newPage(context);
    await page.goto(`${server.base}/crypto_report/${rich.id}`, { waitUntil: 'domcontentloaded' });
    const frame = await reportFrame(page);
    const theme = () => page.evaluate(() => document.documentElement.getAttribute('data-theme'));
    const frameTheme = (f) => f.evaluate(() => document.documentElement.getAttribute('data-theme'));
    assert.equal(await theme(), 'light');
    assert.equal(await frameTheme(frame), 'light');

    await page.click('#theme-toggle');
    await page.waitForFunction(() => document.documentElement.getAttribute('data-theme') === 'dark', null, { timeout: WAIT_MS });
    try {
      await frame.waitForFunction(() => document.documentElement.getAttribute('data-theme') === 'dark', null, { timeout: WAIT_MS });
    } catch {
      assert.fail(`the frame kept data-theme="${await frameTheme(frame)}" after the parent went dark`);
    }
    assert.equal(await page.evaluate(() => localStorage.getItem('theme')), 'dark', 'theme not stored');
    await waitForCharts(frame, null); // redrawn for the new colours, still SVG

    await page.reload({ waitUntil: 'domcontentloaded' });
    const early = await page.evaluate(() => ({ body: window.__crThemeAtBody, dcl: window.__crThemeAtDCL }));
    assert.equal(early.body, 'dark', `data-theme when <body> was parsed: ${early.body} (a flash of the light theme)`);
    assert.equal(early.dcl, 'dark', `data-theme at DOMContentLoaded: ${early.dcl}`);
    const frame2 = await reportFrame(page);
    assert.equal(await frameTheme(frame2), 'dark', 'the reloaded frame is not dark');
    assert.match(frame2.url(), /[?&]theme=dark\b/);

    await page.click('#theme-toggle');
    await page.waitForFunction(() => document.documentElement.getAttribute('data-theme') === 'light', null, { timeout: WAIT_MS });
    await frame2.waitForFunction(() => document.documentElement.getAttribute('data-theme') === 'light', null, { timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => localStorage.getItem('theme')), 'light');
    await sleep(300);
    await assertPageClean(page, 'theme');
  } finally {
    await context.close();
  }
});

test('e. the print view has SVG charts, open details, no navigation, and prints to PDF', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const lang of ['vi', 'en']) {
    const context = await newContext();
    try {
      const page = await newPage(context);
      const url = `/crypto_report/${rich.id}/pdf${lang === 'en' ? '?lang=en' : ''}`;
      const res = await page.goto(server.base + url, { waitUntil: 'load' });
      assert.equal(res.status(), 200, `${url} status`);
      assert.equal(await page.evaluate(() => document.documentElement.lang), lang, `${url}: <html lang>`);
      const charts = await waitForCharts(page.mainFrame(), null, { minCharts: 1 });
      assert.equal(charts.lang, lang, `${url}: the visible content is ${charts.lang}`);
      await page.waitForFunction(() => Array.from(document.querySelectorAll('details')).every((d) => d.open),
        null, { timeout: WAIT_MS }).catch(() => {});
      const closed = await page.$$eval('details:not([open])', (ds) => ds.map((d) => d.querySelector('summary')?.textContent.trim() || '?'));
      assert.deepEqual(closed, [], `${url}: closed <details>`);
      assert.equal(await page.locator('.site-nav').count(), 0, `${url}: has site navigation`);
      assert.equal(await page.locator('#print-button').count(), 1, `${url}: no #print-button`);

      const pdf = await page.pdf({ format: 'A4', printBackground: true, timeout: 30_000 });
      assert.equal(pdf.subarray(0, 4).toString('latin1'), '%PDF', `${url}: not a PDF`);
      const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page(?!s)/g) || []).length;
      assert.ok(pages >= 1, `${url}: PDF has no page`);
      assert.ok(pdf.length > 5_000, `${url}: PDF is only ${pdf.length} bytes`);
      fs.writeFileSync(path.join(SHOTS, `print-${rich.id}-${lang}.pdf`), pdf);
      await page.screenshot({ path: path.join(SHOTS, `print-${lang}.png`), fullPage: true, timeout: 30_000 });
      t.diagnostic(`${url}: PDF ${pages} page(s), ${Math.round(pdf.length / 1024)} KiB, ${charts.total} charts`);
      await assertPageClean(page, url);
    } finally {
      await context.close();
    }
  }
});

test('f. the hostile report cannot escape its frame', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  assert.ok(hostile, 'no report with id="escape-results" among the samples (the sandbox test report)');
  const context = await newContext({ colorScheme: 'light' });
  try {
    const url = `${server.base}/crypto_report/${hostile.id}`;
    await context.addCookies([{ name: 'probe', value: '1', url: server.base }]);
    const page = await newPage(context);
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    const frame = await reportFrame(page);
    const framePath = `/crypto_report/${hostile.id}/frame`;

    // Wait for every attempt to settle (the slowest gives up after 5 s), failing fast if
    // the frame is navigated away from the report document.
    const deadline = Date.now() + 15_000;
    let results = [];
    for (;;) {
      assertFrameStayed(page);
      assert.equal(pathOf(frame.url()), framePath, 'the hostile frame is not showing its report');
      results = await frame.evaluate(() => Array.from(document.querySelectorAll('.report-lang:not([hidden]) [data-escape-results] li[data-outcome]'))
        .map((li) => ({ attempt: li.dataset.attempt, outcome: li.dataset.outcome, text: li.textContent.trim() })))
        .catch((e) => assert.fail(`cannot read the escape results in the frame: ${e.message.split('\n')[0]}`));
      if (results.length > 0 && !results.some((r) => r.outcome === 'pending')) break;
      if (Date.now() > deadline) assert.fail(`escape results did not settle: ${JSON.stringify(results)}`);
      await sleep(200);
    }
    t.diagnostic(results.map((r) => `${r.attempt}=${r.outcome}`).join(' '));
    const bad = results.filter((r) => r.outcome !== 'blocked' && r.outcome !== 'sent');
    assert.deepEqual(bad, [], 'escape attempts not blocked');

    // Let the forged messages (and anything they trigger) land before looking at the parent.
    await sleep(500);
    const parent = await page.evaluate(() => ({
      pwned: document.body.dataset.pwned,
      href: location.href,
      cookie: document.cookie,
      theme: document.documentElement.getAttribute('data-theme'),
      local: Object.keys(localStorage),
      session: Object.keys(sessionStorage),
      tocMarkup: document.querySelectorAll('#toc-list img, #toc-list script').length,
      height: parseFloat(getComputedStyle(document.getElementById('report-frame')).height),
    }));
    assert.equal(parent.pwned, undefined, 'the parent body got data-pwned');
    assert.equal(parent.href, url, 'the parent URL changed');
    assert.match(parent.cookie, /(^|;\s*)probe=1(;|$)/, 'the parent cookie was lost');
    assert.ok(!parent.local.includes('cr_probe'), `parent localStorage has cr_probe: ${parent.local}`);
    assert.ok(!parent.session.includes('cr_probe'), `parent sessionStorage has cr_probe: ${parent.session}`);
    assert.equal(parent.tocMarkup, 0, 'frame-supplied markup reached the TOC');
    assert.equal(parent.theme, 'light', 'a forged cr:set-theme changed the parent theme');
    assert.ok(parent.height > 0 && parent.height < 250_000, `frame height ${parent.height}px is not bounded`);
    const cookies = await context.cookies();
    assert.ok(!cookies.some((c) => c.name === 'cr_probe'), 'the frame managed to set a cookie');
    assert.equal(await frame.evaluate(() => origin), 'null', 'the frame origin is not opaque');
    assert.deepEqual(popups, [], 'the report opened a window');
    assert.equal(context.pages().length, 1, 'extra pages were opened');
    const ownHere = ownProblems(page.__crProblems);
    t.diagnostic(`${page.__crProblems.length - ownHere.length} expected console/CSP reports from the hostile report`);
    await assertPageClean(page, 'hostile report page');
  } finally {
    await context.close();
  }
});

test('j. a report that navigates its own frame is hidden', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.ok(rich, 'no bilingual report with charts among the samples');
  const context = await newContext({ colorScheme: 'light' });
  try {
    const page = await newPage(context);
    await page.goto(`${server.base}/crypto_report/${rich.id}`, { waitUntil: 'domcontentloaded' });
    const frame = await reportFrame(page);
    // Messages from the frame have arrived (its height is applied): it announced itself.
    await page.waitForFunction(() => document.getElementById('report-frame').style.height !== '', null, { timeout: 10_000 });
    // Sandboxing cannot stop a document from navigating itself: do what such a report would.
    await frame.evaluate(() => {
      setTimeout(() => {
        window.location.href = '/robots.txt';
      }, 10);
    });
    await page.waitForSelector('#frame-blocked:not([hidden])', { timeout: 10_000 });
    assert.equal(await page.locator('#report-frame').isHidden(), true, 'the navigated frame is hidden');
    assert.equal(new URL(page.url()).pathname, `/crypto_report/${rich.id}`, 'the page itself stayed');
  } finally {
    await context.close();
  }
});

test('screenshots of the report page (for humans, not asserted)', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const variants = [
    ['desktop', { viewport: { width: 1280, height: 900 } }],
    ['mobile', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }],
  ];
  for (const [name, size] of variants) {
    for (const scheme of ['light', 'dark']) {
      const context = await newContext({ ...size, colorScheme: scheme });
      try {
        const page = await newPage(context);
        await page.goto(`${server.base}/crypto_report/${rich.id}`, { waitUntil: 'domcontentloaded' });
        const frame = await reportFrame(page);
        await waitForCharts(frame, null);
        await sleep(400); // the frame's late height reports
        // Viewport shots while scrolling, not one fullPage shot: Chromium leaves the part of an
        // out-of-process (sandboxed) frame outside the viewport unpainted in those.
        const { innerHeight, scrollHeight } = await page.evaluate(() => ({
          innerHeight: window.innerHeight, scrollHeight: document.documentElement.scrollHeight,
        }));
        for (let i = 0; i < 3; i += 1) {
          const y = Math.min(i * Math.round(innerHeight * 0.9), Math.max(0, scrollHeight - innerHeight));
          await page.evaluate((top) => window.scrollTo(0, top), y);
          await sleep(250);
          await page.screenshot({ path: path.join(SHOTS, `report-${name}-${scheme}-${i}.png`), timeout: 30_000 });
        }
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 0) t.diagnostic(`${name}/${scheme}: page is ${overflow}px wider than the viewport`);
        await assertPageClean(page, `screenshot ${name} ${scheme}`);
      } finally {
        await context.close();
      }
    }
  }
  t.diagnostic(`screenshots in ${path.relative(ROOT, SHOTS) || SHOTS}`);
});

test('g. no request left 127.0.0.1 (no CDN)', { timeout: 5_000 }, (t) => {
  if (blockedByPolicy.length) {
    t.diagnostic(`off-host loads refused by CSP before leaving: ${[...new Set(blockedByPolicy.map((r) => r.url))].join(' ')}`);
  }
  assert.deepEqual(offHost, [], 'requests to hosts other than 127.0.0.1');
});

test('h. no console errors or CSP violations from our own pages and assets', { timeout: 5_000 }, () => {
  const own = ownProblems();
  assert.equal(own.length, 0, describeProblems(own));
});

test('i. the server logged no errors while browsing', { timeout: 5_000 }, () => {
  const errors = server.log.filter((l) => /\bERROR\b/.test(l));
  assert.deepEqual(errors, []);
});
