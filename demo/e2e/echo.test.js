// Laravel Echo on pusher-js's browser build (as a Laravel page's
// bootstrap.js loads them), in Debian's headless Chromium against
// `herald dev` serving a Pusher app: two pages join a presence channel
// (here, joining, leaving), whisper to each other, and hear an event the
// backend triggers through Pusher's HTTP API with Pusher's own server SDK.
// The SDK also signs the channel, as the Laravel app's /broadcasting/auth
// would.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import PusherServer from 'pusher';
import { launchChromium } from './chromium.js';
import { HeraldDev } from './herald-dev.js';

const resolve = createRequire(import.meta.url).resolve;
const PUSHER_JS = resolve('pusher-js/dist/web/pusher.js');
// Not among the package's exports: found beside its main file, in dist/.
const ECHO = join(dirname(resolve('laravel-echo')), 'echo.iife.js');
const APP = { id: 'echo-demo', key: 'echo-demo-key', secret: 'echo-demo-secret' };

/** @type {HeraldDev} */
let server;
/** @type {import('playwright-core').BrowserContext} */
let browser;
/** Pusher's server SDK for the app, pointed at herald dev, as the Laravel app's .env would. */
let backend;

before(async () => {
  server = await HeraldDev.start({
    HERALD_PUSHER_APP_ID: APP.id,
    HERALD_PUSHER_KEY: APP.key,
    HERALD_PUSHER_SECRET: APP.secret,
  });
  backend = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: server.port });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * A page on herald dev's origin with Echo connected as `user`
 * (`window.Echo`), its presence channel `chat` joined and what it sees
 * recorded in `window.seen`.
 */
async function echoPage(user) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.errors = errors;
  // The app's auth endpoint: Pusher's SDK signs the presence subscription.
  await page.exposeFunction('authorize', (socketId, channel) =>
    backend.authorizeChannel(socketId, channel, { user_id: user, user_info: { name: user } }),
  );
  await page.goto(`${server.url}/healthz`);
  await page.addScriptTag({ path: PUSHER_JS });
  await page.addScriptTag({ path: ECHO });
  await page.evaluate(
    ({ key, port }) => {
      window.seen = { here: null, joining: [], leaving: [], whispers: [], messages: [] };
      // The IIFE build exposes the module: the class is its default export.
      window.Echo = new Echo.default({
        broadcaster: 'pusher',
        key,
        cluster: 'herald',
        wsHost: '127.0.0.1',
        wsPort: port,
        forceTLS: false,
        enabledTransports: ['ws'],
        disableStats: true,
        authorizer: (channel) => ({
          authorize: (socketId, callback) => window.authorize(socketId, channel.name).then((auth) => callback(null, auth), (e) => callback(e)),
        }),
      });
      window.Echo.join('chat')
        .here((members) => (window.seen.here = members.map((m) => m.name).sort()))
        .joining((member) => window.seen.joining.push(member.name))
        .leaving((member) => window.seen.leaving.push(member.name))
        .listen('.message', (data) => window.seen.messages.push(data))
        .listenForWhisper('typing', (data) => window.seen.whispers.push(data));
    },
    { key: APP.key, port: server.port },
  );
  await page.waitForFunction(() => window.seen.here !== null, null, { timeout: 10_000 });
  return page;
}

const seen = (page) => page.evaluate(() => window.seen);

test('two browsers on Laravel Echo: presence, whispers and a triggered event', async () => {
  const ann = await echoPage('ann');
  assert.deepEqual((await seen(ann)).here, ['ann']);
  const bob = await echoPage('bob');
  assert.deepEqual((await seen(bob)).here, ['ann', 'bob']);
  await ann.waitForFunction(() => window.seen.joining.includes('bob'), null, { timeout: 10_000 });

  // Client events (whisper) reach the other page, never the sender.
  await bob.evaluate(() => window.Echo.join('chat').whisper('typing', { who: 'bob' }));
  await ann.waitForFunction(() => window.seen.whispers.length === 1, null, { timeout: 10_000 });
  assert.deepEqual((await seen(ann)).whispers, [{ who: 'bob' }]);

  // The backend triggers through the Pusher HTTP API; every page hears it.
  const response = await backend.trigger('presence-chat', 'message', { text: 'hello from the backend' });
  assert.equal(response.status, 200);
  for (const page of [ann, bob]) {
    await page.waitForFunction(() => window.seen.messages.length === 1, null, { timeout: 10_000 });
    assert.deepEqual((await seen(page)).messages, [{ text: 'hello from the backend' }]);
  }
  assert.deepEqual((await seen(bob)).whispers, [], 'a whisper is not echoed to its sender');

  await bob.close();
  await ann.waitForFunction(() => window.seen.leaving.includes('bob'), null, { timeout: 10_000 });
  assert.deepEqual(ann.errors, []);
});
