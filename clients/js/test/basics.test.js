// Connecting, requests and replies, errors, events and groups, against a
// real Herald.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClientErrorCode, Herald, HeraldError } from '../herald.js';
import { connect, countingWebSocket, next, silence } from './client.js';
import { startHerald } from './server.js';

/** @type {Awaited<ReturnType<typeof startHerald>>} */
let server;
before(async () => {
  server = await startHerald();
});
after(() => server?.stop());

/** A connected client for `user`; closed after the test. */
async function connected(t, user, options) {
  const client = connect(server, { token: server.token(user) }, options);
  t.after(() => client.close());
  const details = await next(client, '$connected');
  return { client, details };
}

describe('connecting', () => {
  test('$connected carries the server details and the state follows', async (t) => {
    const client = connect(server, { token: server.token('alice') });
    t.after(() => client.close());
    assert.equal(client.state, 'connecting');
    assert.equal(client.session, null);
    const details = await next(client, '$connected');
    assert.equal(details.user, 'alice');
    assert.match(details.conn, /^[0-9a-f]{16}\.\d+$/);
    assert.deepEqual(details.groups, []);
    assert.equal(client.state, 'connected');
    assert.deepEqual(client.session, details);
  });

  test('groups in the token are in $connected', async (t) => {
    const client = connect(server, { token: server.token('bob', { claims: { groups: ['staff'] } }) });
    t.after(() => client.close());
    assert.deepEqual((await next(client, '$connected')).groups, ['staff']);
  });

  test('getToken is asked for the token', async (t) => {
    let asked = 0;
    const client = connect(server, {
      getToken: async () => {
        asked += 1;
        return server.token('carol');
      },
    });
    t.after(() => client.close());
    assert.equal((await next(client, '$connected')).user, 'carol');
    assert.equal(asked, 1);
  });

  test('bad arguments fail at once', () => {
    assert.throws(() => new Herald('ftp://example.com/ws', {}, { WebSocket: class {} }), TypeError);
    assert.throws(() => new Herald('ws://127.0.0.1:1/ws', {}, {}), /no WebSocket class/);
    assert.throws(() => new Herald('ws://127.0.0.1:1/ws', { getToken: 'x' }, { WebSocket: class {} }), TypeError);
  });

  test('http URLs become ws URLs', async (t) => {
    const client = new Herald(server.wsUrl.replace('ws:', 'http:'), { token: server.token('dave') }, { WebSocket: countingWebSocket() });
    t.after(() => client.close());
    assert.equal((await next(client, '$connected')).user, 'dave');
  });
});

describe('requests', () => {
  test('echo replies with the details', async (t) => {
    const { client } = await connected(t, 'alice');
    const details = { text: 'héllo 🦀', list: [1, 2.5, null, true], nested: { a: {} } };
    assert.deepEqual(await client.request('echo', details), details);
    assert.equal(await client.request('echo'), null);
    const whoami = await client.request('echo', { whoami: true });
    assert.equal(whoami.user, 'alice');
    assert.equal(whoami.conn, client.session.conn);
  });

  test('$ping is answered by $pong', async (t) => {
    const { client } = await connected(t, 'alice');
    assert.deepEqual(await client.request('$ping', { t: 1 }), { t: 1 });
  });

  test('concurrent requests each get their own reply', async (t) => {
    const { client } = await connected(t, 'alice');
    const numbers = Array.from({ length: 20 }, (_, i) => i);
    assert.deepEqual(await Promise.all(numbers.map((n) => client.request('echo', n))), numbers);
  });

  test('an error reply rejects with its code and message', async (t) => {
    const { client } = await connected(t, 'alice');
    const cases = [
      ['no-such-route', {}, 404],
      ['chat/nope', {}, 404],
      ['chat/send', { room: 'lobby', text: 'hi' }, 403],
      ['chat/join', { room: 'not a room!' }, 400],
      ['$bogus', {}, 400],
    ];
    for (const [action, details, code] of cases) {
      await assert.rejects(client.request(action, details), (error) => {
        assert.ok(error instanceof HeraldError, `${action}: ${error}`);
        assert.equal(error.code, code, `${action}: ${error.message}`);
        assert.equal(error.action, action);
        assert.equal(error.local, false);
        assert.ok(error.message.length > 0);
        return true;
      });
    }
    assert.equal(client.state, 'connected');
  });

  test('a request times out when no reply comes', async (t) => {
    const { client } = await connected(t, 'alice');
    server.pause();
    t.after(() => server.resume());
    const started = Date.now();
    await assert.rejects(client.request('echo', 'late', { timeout: 300 }), (error) => {
      assert.ok(error instanceof HeraldError);
      assert.equal(error.code, ClientErrorCode.TIMEOUT);
      assert.equal(error.local, true);
      assert.match(error.message, /no reply to echo within 300 ms/);
      return true;
    });
    assert.ok(Date.now() - started >= 290, 'not before the timeout');
    // The late reply, once the server runs again, is dropped, not emitted.
    const quiet = silence(client, 'echo', 1000);
    server.resume();
    assert.equal(await client.request('echo', 'on time'), 'on time');
    await quiet;
  });

  test('the default timeout is an option', async (t) => {
    const { client } = await connected(t, 'alice', { requestTimeoutMs: 200 });
    server.pause();
    t.after(() => server.resume());
    await assert.rejects(client.request('echo', 1), { code: ClientErrorCode.TIMEOUT, message: /within 200 ms/ });
  });

  test('a reply to send() arrives as an event', async (t) => {
    const { client } = await connected(t, 'alice');
    const reply = next(client, 'echo');
    assert.equal(client.send('echo', { fire: 'forget' }), true);
    assert.deepEqual(await reply, { fire: 'forget' });
    const error = next(client, 'no-route:error');
    client.send('no-route');
    assert.equal((await error).code, 404);
  });

  test('actions must be non-empty strings', async (t) => {
    const { client } = await connected(t, 'alice');
    assert.throws(() => client.send(''), TypeError);
    assert.throws(() => client.request(42), TypeError);
  });
});

describe('events', () => {
  test('on, once and off', async (t) => {
    const { client } = await connected(t, 'erin');
    const seen = { on: [], once: [], off: [], unsubscribed: [] };
    client.on('note', (details) => seen.on.push(details.n));
    client.once('note', (details) => seen.once.push(details.n));
    const offListener = (details) => seen.off.push(details.n);
    client.on('note', offListener);
    const unsubscribe = client.on('note', (details) => seen.unsubscribed.push(details.n));
    const publishNote = async (n) => {
      const arrived = next(client, 'note', { where: (details) => details.n === n });
      await server.publish({ to: { users: ['erin'] }, action: 'note', details: { n } });
      await arrived;
    };
    await publishNote(1);
    client.off('note', offListener);
    unsubscribe();
    await publishNote(2);
    await publishNote(3);
    assert.deepEqual(seen, { on: [1, 2, 3], once: [1], off: [1], unsubscribed: [1] });
  });

  test('a throwing listener does not stop the others', async (t) => {
    const { client } = await connected(t, 'frank');
    // The error surfaces as an uncaught exception, as with EventTarget; catch
    // it here instead of the test runner.
    const runners = process.rawListeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    t.after(() => runners.forEach((listener) => process.on('uncaughtException', listener)));
    const thrown = new Promise((resolve) => process.once('uncaughtException', resolve));
    client.on('note', () => {
      throw new Error('listener bug');
    });
    const arrived = next(client, 'note');
    await server.publish({ to: { users: ['frank'] }, action: 'note', details: 'x' });
    assert.equal(await arrived, 'x');
    assert.equal((await thrown).message, 'listener bug');
    assert.equal(await client.request('echo', 'still fine'), 'still fine');
  });
});

describe('groups', () => {
  test('join, receive, leave', async (t) => {
    const { client } = await connected(t, 'gina');
    assert.deepEqual(await client.join('team'), { group: 'team' });
    const news = next(client, 'news');
    await server.publish({ to: { groups: ['team'] }, action: 'news', details: { n: 1 } });
    assert.deepEqual(await news, { n: 1 });

    assert.deepEqual(await client.leave('team'), { group: 'team' });
    const seen = [];
    client.on('news', (details) => seen.push(details));
    const marker = next(client, 'marker');
    await server.publish({ to: { groups: ['team'] }, action: 'news', details: { n: 2 } });
    await server.publish({ to: { users: ['gina'] }, action: 'marker' });
    await marker;
    assert.deepEqual(seen, [], 'no group message after leaving');
  });

  test('a refused join rejects with 403', async (t) => {
    const token = server.token('hank', { claims: { join: ['room:*'] } });
    const client = connect(server, { token });
    t.after(() => client.close());
    await next(client, '$connected');
    assert.deepEqual(await client.join('room:ok'), { group: 'room:ok' });
    await assert.rejects(client.join('secret'), { code: 403, local: false });
  });

  test('chat: messages reach everyone in the room', async (t) => {
    const { client: ann } = await connected(t, 'ann');
    const { client: ben } = await connected(t, 'ben');
    assert.deepEqual(await ann.request('chat/join', { room: 'lobby' }), { room: 'lobby' });
    const joined = next(ann, 'chat/joined', { where: (d) => d.user === 'ben' });
    await ben.request('chat/join', { room: 'lobby' });
    assert.deepEqual(await joined, { room: 'lobby', user: 'ben' });
    const atAnn = next(ann, 'chat/message');
    const atBen = next(ben, 'chat/message');
    assert.deepEqual(await ben.request('chat/send', { room: 'lobby', text: 'hi ann' }), { ok: true });
    for (const message of await Promise.all([atAnn, atBen])) {
      assert.equal(message.user, 'ben');
      assert.equal(message.text, 'hi ann');
      assert.equal(message.room, 'lobby');
      assert.match(message.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });
});

describe('closing', () => {
  test('close() rejects what is pending, stops, and never reconnects', async (t) => {
    const WebSocket = countingWebSocket();
    const { client } = await connected(t, 'ivy', { WebSocket });
    server.pause();
    t.after(() => server.resume());
    const pending = client.request('echo', 'never answered');
    const disconnected = next(client, '$disconnected');
    client.close();
    await assert.rejects(pending, { code: ClientErrorCode.DISCONNECTED, local: true });
    assert.deepEqual(await disconnected, { code: 1000, reason: 'client closed', willReconnect: false });
    assert.equal(client.state, 'closed');
    assert.equal(client.send('echo', 1), false);
    await assert.rejects(client.request('echo', 1), { code: ClientErrorCode.DISCONNECTED, message: /closed/ });
    server.resume();
    await silence(client, '$reconnecting', 500);
    assert.equal(WebSocket.opened, 1);
    client.close(); // twice is fine
  });

  test('close() while connecting', async () => {
    const WebSocket = countingWebSocket();
    const client = connect(server, { token: server.token('jack') }, { WebSocket });
    const disconnected = next(client, '$disconnected');
    client.close();
    assert.equal((await disconnected).willReconnect, false);
    await silence(client, '$connected', 500);
    assert.equal(WebSocket.opened, 1);
  });
});
