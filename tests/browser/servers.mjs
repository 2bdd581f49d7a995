// crypto-report processes for the browser suites: each runs in its own folder under one
// scratch folder, its output kept for failure messages, and is stopped by its PID.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const START_TIMEOUT_MS = 30_000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const alive = (proc) => proc && proc.exitCode === null && proc.signalCode === null;

// The servers a suite started (`servers`), the folder they run in (`scratch`, made with
// `prefix`), and how to start (`bin` with `args`, resolving once it listens) and stop one.
export function processes(bin, prefix) {
  const servers = [];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), prefix));

  async function start(args, env = {}) {
    const cwd = fs.mkdtempSync(path.join(scratch, 'run-'));
    const proc = spawn(bin, args, {
      cwd,
      env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = [];
    const server = { proc, log, base: '' };
    servers.push(server);
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${args[0]} did not start:\n${log.slice(-20).join('\n')}`)), START_TIMEOUT_MS);
      proc.once('error', (e) => { clearTimeout(timer); reject(e); });
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${args[0]} exited (${code}):\n${log.slice(-20).join('\n')}`)); });
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
    return server;
  }

  async function stop(server) {
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

  let timer = null;

  // A suite that outlives `ms` kills its servers and exits; on exit, however it comes, no
  // server it started is left running (`bound` below, with the timer kept for `finish`).
  function guard(name, ms) {
    timer = bound(name, servers, ms);
  }

  // The suite's end: its browser (bounded), its servers, `others` (loopback fakes with a
  // close()), its scratch folder and its guard.
  async function finish(browser, others = []) {
    try {
      if (browser) await Promise.race([browser.close(), sleep(10_000)]);
    } finally {
      for (const s of servers) await stop(s);
      for (const o of others) o.close();
      fs.rmSync(scratch, { recursive: true, force: true });
      clearTimeout(timer);
    }
  }

  return { servers, scratch, start, stop, guard, finish };
}

// A moment about `agoMs` back that is still today for a reader in Vietnam (UTC+7, no daylight
// saving time), where pages write a bare time for today and the date beside another day's:
// "20 minutes ago" at 00:10 there is yesterday. In the last 30 s of a day it waits for the
// next (the page could be drawn after midnight); when today began less than `atLeastMs` ago,
// until it did, so the moment is at least that old.
export async function earlierToday(agoMs, atLeastMs = 0) {
  const sinceMidnight = () => (Date.now() + 7 * 3_600_000) % 86_400_000;
  const left = 86_400_000 - sinceMidnight();
  if (left < 30_000) await sleep(left);
  const short = atLeastMs + 1_000 - sinceMidnight();
  if (short > 0) await sleep(short);
  const now = Date.now();
  return new Date(now - Math.max(atLeastMs, Math.min(agoMs, sinceMidnight() - 500)));
}

// A page in a context of its own as a reader in Vietnam meets it (vi-VN, Asia/Ho_Chi_Minh,
// light theme, 1366x900 unless `options` say otherwise). Nothing but 127.0.0.1 is reachable;
// the page's uncaught errors go to `problems`.
export async function openPage(browser, problems, options = {}, waitMs = 10_000) {
  const context = await browser.newContext({
    locale: 'vi-VN', timezoneId: 'Asia/Ho_Chi_Minh', colorScheme: 'light', viewport: { width: 1366, height: 900 }, ...options,
  });
  context.setDefaultTimeout(waitMs);
  await context.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort('blockedbyclient'));
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror on ${page.url()}: ${e.message}`));
  return { context, page };
}

// Bounds a suite: after `ms` it kills the servers it started and exits; when node exits for
// any reason, no server it started outlives it. Returns the timer, for `after` to clear.
export function bound(name, servers, ms) {
  const watchdog = setTimeout(() => {
    console.error(`${name} suite exceeded ${ms / 1000} s; giving up`);
    for (const s of servers) if (alive(s.proc)) s.proc.kill('SIGKILL');
    process.exit(1);
  }, ms);
  watchdog.unref();
  process.on('exit', () => {
    for (const s of servers) {
      if (alive(s.proc)) {
        try { process.kill(s.proc.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  });
  return watchdog;
}
