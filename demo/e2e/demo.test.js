// The chat demo in a real browser (Debian's Chromium, driven by
// playwright-core) against `herald dev`: two people chat, the server
// restarts, both pages reconnect and go on chatting; the page fits a phone.
// Screenshots go to artifacts/e2e/ at the repository's root.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium } from './chromium.js';
import { HeraldDev, REPO } from './herald-dev.js';

const ARTIFACTS = join(REPO, 'artifacts/e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };
const ROOM = 'e2e';
/** Long enough for a reconnect with the client's default back-off. */
const RECONNECT_MS = 30_000;

/** @type {HeraldDev} */
let server;
/** @type {import('playwright-core').BrowserContext} */
let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await HeraldDev.start();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * A page of the demo at `viewport`. Uncaught script errors are collected in
 * `page.errors` (failed WebSocket connections while the server is down are
 * logged by the browser, not thrown, and are expected).
 */
async function openDemo(viewport) {
  const page = await browser.newPage();
  await page.setViewportSize(viewport);
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.errors = errors;
  await page.goto(`${server.url}/`);
  return page;
}

/** Signs in as `name` and joins `room`. */
async function joinRoom(page, name, room) {
  await page.getByRole('textbox', { name: 'Your name' }).fill(name);
  await page.getByRole('textbox', { name: 'Room' }).fill(room);
  await page.getByRole('button', { name: 'Join' }).click();
  await connected(page);
  await page.locator('#room-name', { hasText: room }).waitFor();
}

/** Waits until the page shows the connection as connected. */
function connected(page, timeout = 10_000) {
  return page.locator('#status[data-state="connected"]').waitFor({ timeout });
}

/** Sends `text` and waits until `others` (and the sender) show it. */
async function say(page, name, text, others) {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('textbox', { name: 'Message' }).press('Enter');
  for (const other of [page, ...others]) {
    await other.locator(`.message[data-user="${name}"] .text`, { hasText: text }).waitFor({ timeout: 10_000 });
  }
  assert.equal(await page.getByRole('textbox', { name: 'Message' }).inputValue(), '', 'the input is cleared once sent');
}

/** The names in the online list. */
async function online(page) {
  const names = await page.locator('#online li').evaluateAll((items) => items.map((item) => item.firstChild.textContent));
  return names.sort();
}

/** Fails if the page scrolls sideways. */
async function assertNoHorizontalScroll(page, when) {
  const { scrollWidth, clientWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  }));
  assert.ok(scrollWidth <= clientWidth, `${when}: page is ${scrollWidth} px wide in a ${clientWidth} px viewport`);
}

function screenshot(page, name) {
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

test('herald dev serves this demo and this SDK', async () => {
  const files = {
    '/': 'demo/index.html',
    '/demo/app.js': 'demo/app.js',
    '/demo/style.css': 'demo/style.css',
    '/sdk/herald.js': 'clients/js/herald.js',
  };
  for (const [path, file] of Object.entries(files)) {
    const response = await fetch(`${server.url}${path}`);
    assert.equal(response.status, 200, path);
    assert.equal(await response.text(), readFileSync(join(REPO, file), 'utf8'), `${path} is ${file} (rebuild herald after changing it)`);
  }
});

test('two people chat, the server restarts, they chat on', async () => {
  const ann = await openDemo(DESKTOP);
  const ben = await openDemo(PHONE);

  // Accessible basics: every field has a label.
  const unlabelled = await ann.locator('input').evaluateAll((inputs) => inputs.filter((i) => i.labels.length === 0).map((i) => i.id));
  assert.deepEqual(unlabelled, []);
  await assertNoHorizontalScroll(ben, 'sign-in form at 375 px');
  await screenshot(ben, '01-sign-in-phone');

  await joinRoom(ann, 'ann', ROOM);
  await joinRoom(ben, 'ben', ROOM);
  await ann.locator('.notice', { hasText: 'ben joined' }).waitFor();
  for (const page of [ann, ben]) {
    await page.waitForFunction(() => document.querySelectorAll('#online li').length === 2);
    assert.deepEqual(await online(page), ['ann', 'ben']);
  }

  await say(ann, 'ann', 'Hello Ben!', [ben]);
  await say(ben, 'ben', 'Hi Ann, from my phone.', [ann]);
  assert.equal(await ann.locator('.message.own').count(), 1, 'own messages are marked');
  await screenshot(ann, '02-chat-desktop');
  await screenshot(ben, '02-chat-phone');

  // The server goes away: both pages say so.
  await server.stop();
  for (const page of [ann, ben]) {
    await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: 5000 });
    await page.locator('#status-text', { hasText: /Reconnecting/ }).waitFor();
  }
  await screenshot(ann, '03-reconnecting-desktop');

  // It comes back on the same port: both reconnect, rejoin, and chat on.
  await server.start();
  await Promise.all([connected(ann, RECONNECT_MS), connected(ben, RECONNECT_MS)]);
  await say(ben, 'ben', 'Still here after the restart.', [ann]);
  await say(ann, 'ann', 'Me too.', [ben]);
  for (const page of [ann, ben]) {
    await page.waitForFunction(() => document.querySelectorAll('#online li').length === 2);
    assert.deepEqual(await online(page), ['ann', 'ben']);
  }
  await screenshot(ann, '04-after-restart-desktop');
  await screenshot(ben, '04-after-restart-phone');

  // A long unbroken message wraps on the phone.
  await say(ann, 'ann', `long:${'x'.repeat(300)}`, [ben]);
  await assertNoHorizontalScroll(ben, 'chat at 375 px');
  await screenshot(ben, '05-long-message-phone');

  // Ann leaves; Ben sees her go.
  await ann.getByRole('button', { name: 'Leave' }).click();
  await ann.locator('#sign-in:not([hidden])').waitFor();
  await ben.locator('.notice', { hasText: 'ann left' }).waitFor({ timeout: 10_000 });
  await ben.waitForFunction(() => document.querySelectorAll('#online li').length === 1);
  assert.deepEqual(await online(ben), ['ben']);
  await screenshot(ben, '06-after-leave-phone');
  await ben.emulateMedia({ colorScheme: 'dark' });
  await screenshot(ben, '07-dark-phone');

  assert.deepEqual(ann.errors, [], 'no script errors on Ann’s page');
  assert.deepEqual(ben.errors, [], 'no script errors on Ben’s page');
});
