// A report published while a reader has the home page open: the server syncs it from a real
// PostgreSQL (the one scripts/test starts: CR_TEST_PG_URL), announces it over the WebSocket,
// and the open home page shows it at the top without a reload.
//
// Env: CR_TEST_PG_URL (skipped without it, except in CI), CR_BIN, CHROMIUM. Needs psql.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(process.env.CR_BIN || path.join(ROOT, 'target', 'debug', 'crypto-report'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ADMIN = 'browser-admin-token-0123456789';
const PG = process.env.CR_TEST_PG_URL;
const CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const skip = !PG && !CI ? 'no PostgreSQL (CR_TEST_PG_URL unset; scripts/test starts one)' : false;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cr-live-report-'));
const DB = `cr_browser_live_${process.pid}`;
const dbUrl = PG ? PG.replace(/\/[^/?]*(\?|$)/, `/${DB}$1`) : '';
const psql = (url, sql) => execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], { stdio: 'pipe' });

let server;
let browser;
let base = '';

before(async () => {
  if (skip) return;
  assert.ok(PG, 'CR_TEST_PG_URL must be set in CI');
  psql(PG, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  psql(PG, `CREATE DATABASE ${DB}`);
  execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', dbUrl, '-f', path.join(ROOT, 'migrations-import', 'current.sql')], { stdio: 'pipe' });
  psql(dbUrl, `INSERT INTO crypto_report (html_content, html_content_en, created_at) VALUES
    ('<section id="a"><h2>Tổng quan</h2><p>Thị trường đi ngang trong tuần qua.</p></section>',
     '<section id="a"><h2>Overview</h2><p>The market moved sideways last week.</p></section>', now() - interval '2 days')`);
  const env = { ...process.env, RUST_LOG: 'info', NO_COLOR: '1', CR_DATA_DIR: path.join(scratch, 'store') };
  for (const p of ['COINGECKO', 'COINMARKETCAP', 'BINANCE', 'ALTERNATIVE_ME', 'TAAPI', 'FINNHUB']) {
    env[`CR_${p}_URL`] = 'http://127.0.0.1:9';
  }
  server = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--sync-from', dbUrl, '--sync-every', '1h', '--admin-token', ADMIN], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve did not start')), 30_000);
    server.once('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited (${code})`)); });
    readline.createInterface({ input: server.stderr }).on('line', (line) => {
      const m = /listening.*address=127\.0\.0\.1:(\d+)/.exec(line);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
  base = `http://127.0.0.1:${port}`;
  // The first pass imports the first report.
  for (let i = 0; i < 100; i += 1) {
    const health = await (await fetch(`${base}/health`)).json();
    if (health.sync && health.sync.passes >= 1) break;
    await sleep(100);
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    await Promise.race([exited, sleep(8_000)]);
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  if (PG) {
    try { psql(PG, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`); } catch { /* best effort */ }
  }
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('a report published while the home page is open appears there without a reload', { skip, timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/?lang=en`);
  await page.evaluate(() => { window.__sameDocument = true; });
  // Wait for the live connection before publishing.
  await page.waitForFunction(() => document.querySelector('.market-dashboard [data-connection], .mk-status') !== null, null, { timeout: 10_000 }).catch(() => {});
  await sleep(500);
  const before = await page.getAttribute('section.latest h3 a', 'href');
  assert.equal(before, '/crypto_report/1');

  psql(dbUrl, `INSERT INTO crypto_report (html_content, html_content_en, created_at) VALUES
    ('<section id="b"><h2>Tổng quan</h2><p>Dòng tiền quay lại thị trường mạnh mẽ.</p></section>',
     '<section id="b"><h2>Overview</h2><p>Money flowed back into the market in force.</p></section>', now() - interval '1 minute')`);
  const synced = await fetch(`${base}/admin/sync`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(synced.status, 200);

  await page.waitForFunction(() => {
    const a = document.querySelector('section.latest h3 a');
    return a && a.getAttribute('href') === '/crypto_report/2';
  }, null, { timeout: 10_000 });
  const shown = await page.evaluate(() => ({
    same: window.__sameDocument === true,
    latest: document.querySelector('section.latest').textContent,
    recent: [...document.querySelectorAll('section.recent a[href^="/crypto_report/"]')].map((a) => a.getAttribute('href')),
    lang: document.documentElement.getAttribute('lang'),
  }));
  assert.ok(shown.same, 'the page was not reloaded');
  assert.match(shown.latest, /Money flowed back/, 'in the reader\'s language');
  assert.doesNotMatch(shown.latest, /Dòng tiền/);
  assert.ok(shown.recent.includes('/crypto_report/1'), `the former latest moved to the recent list: ${shown.recent}`);
  assert.equal(shown.lang, 'en');
  await page.close();
});
