// Reconnecting when the server restarts or goes away: lifecycle events,
// groups joined again, frames queued meanwhile, requests cut off.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ClientErrorCode } from '../herald.js';
import { connect, next, record, silence, until } from './client.js';
import { sleep, startHerald } from './server.js';

/** @type {Awaited<ReturnType<typeof startHerald>>} */
let server;
before(async () => {
  server = await startHerald();
});
after(() => server?.stop());

const LIFECYCLE = ['$connected', '$disconnected', '$reconnecting'];

/** The lifecycle events, as `name:detail` strings, with repeated attempts folded. */
function story(events) {
  const names = events.map(({ action, details }) =>
    action === '$disconnected' ? `${action}:${details.code}:${details.willReconnect}` : action,
  );
  return names.filter((name, i) => !(name === '$reconnecting' && names[i - 1] === '$reconnecting'));
}

test('a restart: $disconnected, $reconnecting, $connected, and groups joined again', async (t) => {
  const client = connect(server, { token: server.token('alice') });
  t.after(() => client.close());
  const events = record(client, LIFECYCLE);
  const first = await next(client, '$connected');
  await client.join('team');

  const reconnected = next(client, '$connected');
  await server.restart('SIGTERM');
  const second = await reconnected;

  assert.deepEqual(story(events), ['$connected', '$disconnected:1012:true', '$reconnecting', '$connected']);
  assert.match(events[1].details.reason, /restart/);
  const attempts = events.filter((e) => e.action === '$reconnecting').map((e) => e.details);
  assert.deepEqual(
    attempts.map((a) => a.attempt),
    attempts.map((_, i) => i + 1),
  );
  for (const { delayMs } of attempts) assert.ok(delayMs >= 0 && delayMs <= 1000, `delay ${delayMs} within the cap`);
  assert.notEqual(second.conn, first.conn, 'a new connection');
  assert.equal(client.state, 'connected');

  // The group was joined again: a group message reaches the new connection.
  // The re-join is sent before $connected is emitted; an echo round trip
  // after it proves the server handled it.
  await client.request('echo', 'sync');
  const news = next(client, 'news');
  await server.publish({ to: { groups: ['team'] }, action: 'news', details: 'after restart' });
  assert.equal(await news, 'after restart');

  // And again: the attempt count starts over after a successful reconnect.
  const again = next(client, '$connected');
  const firstAttempt = next(client, '$reconnecting');
  await server.restart('SIGTERM');
  assert.equal((await firstAttempt).attempt, 1);
  await again;
  await client.request('echo', 'sync');
  const more = next(client, 'news');
  await server.publish({ to: { groups: ['team'] }, action: 'news', details: 'after two restarts' });
  assert.equal(await more, 'after two restarts');
});

test('the first attempt after a lost connection is quick; the back-off starts after it', async (t) => {
  // The default back-off, the one applications get, with the jitter pinned
  // to the top of each window so the delays are exact.
  t.mock.method(Math, 'random', () => 1);
  const client = connect(server, { token: server.token('ivy') }, { backoff: {} });
  t.after(() => client.close());
  await next(client, '$connected');
  const attempts = record(client, ['$reconnecting']);

  const disconnected = next(client, '$disconnected');
  await server.stopFront('SIGKILL'); // as when an edge dies: no close frame
  assert.equal((await disconnected).code, 1006);
  // The first attempt fails against the dead server; the second one is
  // scheduled when it does.
  while (attempts.length < 2) await sleep(10);
  const reconnected = next(client, '$connected', { timeout: 10_000 });
  await server.startFront();
  await reconnected;

  assert.deepEqual(
    attempts.slice(0, 2).map((e) => e.details),
    [
      { attempt: 1, delayMs: 100 },
      { attempt: 2, delayMs: 500 },
    ],
  );
});

test('a group left is not joined again', async (t) => {
  const client = connect(server, { token: server.token('bob') });
  t.after(() => client.close());
  await next(client, '$connected');
  await client.join('keep');
  await client.join('drop');
  await client.leave('drop');
  const reconnected = next(client, '$connected');
  await server.restart('SIGTERM');
  await reconnected;
  const whoami = await client.request('echo', { whoami: true });
  assert.deepEqual(whoami.groups.sort(), ['keep']);
});

test('a group that cannot be joined again is reported and forgotten', async (t) => {
  // The first token may join room:*, the later ones may not.
  let calls = 0;
  const getToken = () => server.token('hank', { claims: { join: calls++ === 0 ? ['room:*'] : [] } });
  const client = connect(server, { getToken });
  t.after(() => client.close());
  await next(client, '$connected');
  await client.join('room:a');

  const refused = next(client, '$join:error');
  await server.restart('SIGTERM');
  const { group, code } = await refused;
  assert.equal(group, 'room:a');
  assert.equal(code, 403);
  assert.deepEqual((await client.request('echo', { whoami: true })).groups, []);

  const quiet = silence(client, '$join:error', 1500);
  const reconnected = next(client, '$connected');
  await server.restart('SIGTERM');
  await reconnected;
  await quiet;
});

test('frames sent while reconnecting are queued and delivered after $connected', async (t) => {
  const client = connect(server, { token: server.token('carol') });
  t.after(() => client.close());
  await next(client, '$connected');
  const replies = [];
  client.on('echo', (details) => replies.push(details));

  const disconnected = next(client, '$disconnected');
  await server.stopFront('SIGTERM');
  await disconnected;
  assert.notEqual(client.state, 'connected');
  assert.equal(client.send('echo', 'queued 1'), true);
  const answer = client.request('echo', 'queued request');
  assert.equal(client.send('echo', 'queued 2'), true);
  await sleep(300); // a few failed attempts while the server is down

  await server.startFront();
  assert.equal(await answer, 'queued request');
  // The edge runs actions concurrently, so replies may come in any order,
  // and after the request's.
  await until(() => replies.length === 2, 'both queued sends answered');
  assert.deepEqual(replies.sort(), ['queued 1', 'queued 2']);
});

test('a full queue refuses new frames and keeps the old ones', async (t) => {
  const client = connect(server, { token: server.token('dave') }, { queueLimit: 2 });
  t.after(() => client.close());
  await next(client, '$connected');
  const replies = [];
  client.on('echo', (details) => replies.push(details));

  const disconnected = next(client, '$disconnected');
  await server.stopFront('SIGTERM');
  await disconnected;
  assert.equal(client.send('echo', 'a'), true);
  assert.equal(client.send('echo', 'b'), true);
  assert.equal(client.send('echo', 'c'), false);
  await assert.rejects(client.request('echo', 'd'), { code: ClientErrorCode.QUEUE_FULL, local: true });

  const reconnected = next(client, '$connected');
  await server.startFront();
  await reconnected;
  // Concurrent actions: the two answers come in any order, after $connected.
  await until(() => replies.length >= 2, 'both queued sends answered');
  assert.equal(await client.request('echo', 'sync'), 'sync');
  assert.deepEqual(replies.sort(), ['a', 'b'], 'the refused frame was never sent');
});

test('a queued request still times out', async (t) => {
  const client = connect(server, { token: server.token('erin') });
  t.after(() => client.close());
  await next(client, '$connected');
  const disconnected = next(client, '$disconnected');
  await server.stopFront('SIGTERM');
  await disconnected;
  await assert.rejects(client.request('echo', 'x', { timeout: 200 }), { code: ClientErrorCode.TIMEOUT });
  const reconnected = next(client, '$connected');
  await server.startFront();
  await reconnected;
  assert.equal(await client.request('echo', 'y'), 'y');
});

test('a request in flight when the connection drops rejects; the client reconnects', async (t) => {
  const client = connect(server, { token: server.token('frank') });
  t.after(() => client.close());
  await next(client, '$connected');
  const events = record(client, LIFECYCLE);

  server.pause(); // the request goes out and is never answered
  const pending = client.request('echo', 'lost', { timeout: 30_000 });
  await sleep(100);
  const stopped = server.stopFront('SIGKILL'); // the connection drops without a close frame
  await assert.rejects(pending, (error) => {
    assert.equal(error.code, ClientErrorCode.DISCONNECTED);
    assert.equal(error.local, true);
    assert.match(error.message, /connection closed \(1006/);
    return true;
  });
  await stopped;

  const reconnected = next(client, '$connected');
  await server.startFront();
  await reconnected;
  assert.deepEqual(story(events), ['$disconnected:1006:true', '$reconnecting', '$connected']);
  assert.equal(await client.request('echo', 'after'), 'after');
});

test('the first connection is retried until the server is up', async (t) => {
  await server.stopFront('SIGTERM');
  const client = connect(server, { token: server.token('gina') });
  t.after(() => client.close());
  const events = record(client, LIFECYCLE);
  await sleep(500);
  assert.equal(client.state, 'reconnecting');
  const connected = next(client, '$connected');
  await server.startFront();
  await connected;
  assert.deepEqual(story(events), ['$reconnecting', '$connected'], 'no $disconnected before the first $connected');
});
