// socket.io-client's browser build (dist/socket.io.js, as a page loads
// it from a <script> tag) in Debian's headless Chromium against
// `herald dev`: two pages connect with dev tokens over /socket.io/, join a
// chat room through the example handler (the ack gets the reply) and hear
// each other's messages as events; long-polling is refused.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { launchChromium } from './chromium.js';
import { HeraldDev } from './herald-dev.js';

const SOCKET_IO = createRequire(import.meta.url).resolve('socket.io-client/dist/socket.io.js');

/** @type {HeraldDev} */
let server;
/** @type {import('playwright-core').BrowserContext} */
let browser;

before(async () => {
  server = await HeraldDev.start();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page on herald dev's origin with socket.io-client loaded and `user` connected as `window.socket`. */
async function connectedPage(user) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.errors = errors;
  await page.goto(`${server.url}/healthz`);
  await page.addScriptTag({ path: SOCKET_IO });
  const sid = await page.evaluate(async (name) => {
    const { token } = await (await fetch(`/dev/token?user=${name}`)).json();
    window.heard = [];
    window.socket = io({ transports: ['websocket'], auth: { token } });
    window.socket.on('chat/message', (message) => window.heard.push(message));
    return new Promise((resolve, reject) => {
      window.socket.on('connect', () => resolve(window.socket.id));
      window.socket.on('connect_error', reject);
    });
  }, user);
  assert.match(sid, /^[0-9a-f]{16}\.\d+$/);
  return page;
}

test('two browsers chat over Socket.IO through the example chat handler', async () => {
  const [ann, bob] = [await connectedPage('ann'), await connectedPage('bob')];
  for (const page of [ann, bob]) {
    const joined = await page.evaluate(() => window.socket.emitWithAck('chat/join', { room: 'sio' }));
    assert.deepEqual(joined, { room: 'sio' });
  }
  const sent = await ann.evaluate(() => window.socket.emitWithAck('chat/send', { room: 'sio', text: 'hello from socket.io' }));
  assert.deepEqual(sent, { ok: true });
  for (const page of [ann, bob]) {
    await page.waitForFunction(() => window.heard.length === 1);
    const [message] = await page.evaluate(() => window.heard);
    assert.equal(message.user, 'ann');
    assert.equal(message.text, 'hello from socket.io');
  }
  // An error reaches the ack: chat refuses a room not joined.
  const refused = await bob.evaluate(() => window.socket.emitWithAck('chat/send', { room: 'elsewhere', text: 'x' }));
  assert.equal(refused.error.code, 403);
  assert.deepEqual([...ann.errors, ...bob.errors], []);
  await Promise.all([ann.close(), bob.close()]);
});

test('socket.io-client with its default transports is refused: Herald does not long-poll', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/healthz`);
  await page.addScriptTag({ path: SOCKET_IO });
  const refusal = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const socket = io({ reconnection: false });
        socket.on('connect_error', (error) => resolve(error.message));
      }),
  );
  assert.match(refusal, /xhr poll error/);
  const response = await page.evaluate(async () => {
    const answer = await fetch('/socket.io/?EIO=4&transport=polling');
    return { status: answer.status, body: await answer.json() };
  });
  assert.equal(response.status, 400);
  assert.match(response.body.message, /transports: \["websocket"\]/);
  await page.close();
});
