// The PHP example (examples/php) in a real browser (Debian's Chromium,
// driven by playwright-core), as `just php-demo` runs it: `herald dev` routes
// `$connect` and the chat's actions to the app's herald.php, and `php -S`
// serves the app. Two people log in, the page connects by its PHP session
// cookie, one chats over the WebSocket, the other posts the plain form, and
// both see both messages.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { HeraldDev, REPO, freePort } from './herald-dev.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SECRET = 'php-example-e2e-webhook-secret';
const API_KEY = 'php-example-e2e-api-key';

let herald;
let php;
let browser;
let scratch;

/** Resolves once something listens on `port`. */
async function listening(port) {
  for (let tries = 0; tries < 500; tries += 1) {
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve(true)).on('error', () => resolve(false));
      socket.unref();
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`nothing listens on ${port}`);
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'herald-php-e2e-'));
  const appPort = await freePort();
  const routes = join(scratch, 'routes.toml');
  writeFileSync(routes, ['$connect', 'chat/*']
    .map((action) => `[[routes]]\naction = "${action}"\nhttp = "http://127.0.0.1:${appPort}/herald.php"\n`).join('\n'));
  // herald dev takes its settings from this process's environment.
  Object.assign(process.env, { HERALD_ROUTES_FILE: routes, HERALD_WEBHOOK_SECRET: SECRET, HERALD_API_KEY: API_KEY });
  herald = await HeraldDev.start();
  php = spawn('php', ['-S', `127.0.0.1:${appPort}`, '-t', join(REPO, 'examples/php/public')], {
    env: {
      ...process.env,
      PHP_CLI_SERVER_WORKERS: '4',
      HERALD_API_URL: herald.url,
      HERALD_WS_URL: `ws://127.0.0.1:${herald.port}/ws`,
      HERALD_API_KEY: API_KEY,
      HERALD_WEBHOOK_SECRET: SECRET,
    },
    // A group of its own: its workers are killed with it.
    detached: true,
    stdio: 'ignore',
  });
  await listening(appPort);
  php.appUrl = `http://127.0.0.1:${appPort}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  if (php?.pid) process.kill(-php.pid, 'SIGKILL');
  await herald?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** A person in a browser of their own, logged in, on the chat of `room`. */
async function person(name, room) {
  const page = await (await browser.newContext()).newPage();
  page.errors = [];
  page.on('pageerror', (error) => page.errors.push(String(error)));
  await page.goto(`${php.appUrl}/`);
  await page.fill('input[name=name]', name);
  await Promise.all([page.waitForURL('**/index.php'), page.click('button')]);
  await page.goto(`${php.appUrl}/?room=${room}`);
  await page.waitForFunction(
    (expected) => document.getElementById('status').textContent === expected,
    `connected as ${name}`,
    { timeout: 10_000 },
  );
  return page;
}

test('log in, connect by the PHP session, chat over the socket and by a plain form post', async () => {
  const ann = await person('Ann', 'php');
  const bob = await person('Bob', 'php');
  // Both have joined: Ann hears of Bob.
  await ann.locator('#messages', { hasText: 'Bob joined #php' }).waitFor({ timeout: 5000 });

  await ann.fill('#send input[name=text]', 'hello over the socket');
  await ann.click('#send button');
  await bob.locator('#messages', { hasText: 'Ann: hello over the socket (websocket)' }).waitFor({ timeout: 5000 });

  await bob.fill('#post input[name=text]', 'hello by a form');
  await bob.click('#post button');
  for (const page of [ann, bob]) {
    await page.locator('#messages', { hasText: 'Bob: hello by a form (form)' }).waitFor({ timeout: 5000 });
  }
  assert.deepEqual([ann.errors, bob.errors], [[], []]);
});
