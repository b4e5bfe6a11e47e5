// Tokens that expire: `$reauth` answered with a fresh token from getToken,
// and what the client does after a 4001 close, with and without getToken.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, countingWebSocket, next, record, silence } from './client.js';
import { sleep, startHerald } from './server.js';

/** Time the server gives a client to answer `$reauth`. */
const GRACE_MS = 500;

/** @type {Awaited<ReturnType<typeof startHerald>>} */
let server;
before(async () => {
  server = await startHerald({ env: { HERALD_REAUTH_GRACE_MS: String(GRACE_MS) } });
});
after(() => server?.stop());

/**
 * A getToken that hands out `plan` in turn: a number is a token valid that
 * many seconds, an Error is thrown. `calls` counts the calls.
 */
function tokens(user, plan) {
  const getToken = async () => {
    const step = plan[Math.min(getToken.calls, plan.length - 1)];
    getToken.calls += 1;
    if (step instanceof Error) throw step;
    return server.token(user, { ttlSeconds: step });
  };
  getToken.calls = 0;
  return getToken;
}

test('$reauth: a fresh token from getToken keeps the connection', async (t) => {
  const getToken = tokens('alice', [2, 3600]);
  const WebSocket = countingWebSocket();
  const client = connect(server, { getToken }, { WebSocket });
  t.after(() => client.close());
  await next(client, '$connected');
  const reauth = await next(client, '$reauth', { timeout: 4000 });
  assert.equal(reauth.user, 'alice');
  assert.equal(typeof reauth.exp, 'number');
  assert.ok(reauth.exp <= Date.now() / 1000 + 1, 'the expired token');
  await silence(client, '$disconnected', GRACE_MS + 700);
  assert.equal(getToken.calls, 2);
  assert.equal(WebSocket.opened, 1);
  assert.equal((await client.request('echo', { whoami: true })).user, 'alice');
});

test('4001 without getToken: stop, no reconnect', async (t) => {
  const WebSocket = countingWebSocket();
  const client = connect(server, { token: server.token('bob', { ttlSeconds: 2 }) }, { WebSocket });
  t.after(() => client.close());
  const events = record(client, ['$disconnected', '$reconnecting', '$connected']);
  await next(client, '$connected');
  await next(client, '$reauth', { timeout: 4000 });
  const disconnected = await next(client, '$disconnected', { timeout: GRACE_MS + 2000 });
  assert.deepEqual(disconnected, { code: 4001, reason: 'token expired', willReconnect: false });
  assert.equal(client.state, 'closed');
  await sleep(1500);
  assert.equal(WebSocket.opened, 1, 'no reconnect attempt');
  assert.deepEqual(
    events.map((e) => e.action),
    ['$connected', '$disconnected'],
  );
});

test('4001 with getToken: a fresh token, then reconnect', async (t) => {
  // The refresh after $reauth fails, so the server closes with 4001; the
  // next call, before reconnecting, works.
  const getToken = tokens('carol', [2, new Error('token service hiccup'), 3600]);
  const WebSocket = countingWebSocket();
  const client = connect(server, { getToken }, { WebSocket });
  t.after(() => client.close());
  const first = await next(client, '$connected');
  const authError = next(client, '$auth:error', { timeout: 4000 });
  const disconnected = next(client, '$disconnected', { timeout: 4000 + GRACE_MS });
  const reconnected = next(client, '$connected', { timeout: 6000 + GRACE_MS });
  assert.match((await authError).message, /token service hiccup/);
  assert.deepEqual(await disconnected, { code: 4001, reason: 'token expired', willReconnect: true });
  const second = await reconnected;
  assert.notEqual(second.conn, first.conn);
  assert.equal(getToken.calls, 3);
  assert.equal(WebSocket.opened, 2);
});

test('4001 and getToken keeps failing: stop, no reconnect storm', async (t) => {
  const getToken = tokens('dave', [2, new Error('token service down')]);
  const WebSocket = countingWebSocket();
  const client = connect(server, { getToken }, { WebSocket });
  t.after(() => client.close());
  await next(client, '$connected');
  const gaveUp = next(client, '$disconnected', { timeout: 6000 + GRACE_MS, where: (d) => !d.willReconnect });
  const final = await gaveUp;
  assert.equal(final.code, 4001);
  assert.match(final.reason, /token service down/);
  assert.equal(client.state, 'closed');
  await sleep(1000);
  assert.equal(getToken.calls, 3, 'connect, $reauth, one try before reconnecting');
  assert.equal(WebSocket.opened, 1);
});

test('$auth refused by the server is reported', async (t) => {
  // getToken hands out an already expired token after $reauth: the server
  // refuses it with 401.
  const getToken = tokens('erin', [2, -60, 3600]);
  const client = connect(server, { getToken });
  t.after(() => client.close());
  await next(client, '$connected');
  const error = await next(client, '$auth:error', { timeout: 4000 });
  assert.equal(error.code, 401);
  assert.equal((await next(client, '$disconnected', { timeout: GRACE_MS + 2000 })).code, 4001);
  await next(client, '$connected', { timeout: 4000 });
});
