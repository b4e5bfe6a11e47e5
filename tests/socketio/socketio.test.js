/**
 * Socket.IO on Herald's edges, with the real socket.io-client 4 against two
 * `herald edge` processes and a `herald router` on a real nats-server:
 * connecting by token and by cookie, emits through NATS and HTTP handlers
 * with and without acks, rooms, publishes from NATS and the backend API,
 * drain, and bad input that harms no other session.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { eventually, sleep } from '../harness-js/processes.js';
import { Cluster, SESSION_COOKIE, collect, connected, next, socket, token } from './cluster.js';

let cluster;
const sockets = [];
/** A socket on `url` (edge 0 by default), closed after the tests. */
function open(options = {}, url = cluster.edges[0].url) {
  const made = socket(url, options);
  sockets.push(made);
  return made;
}

/** A socket on edge `edge` with a token for `user` (and `claims`), connected. */
async function user(name, edge = 0, claims = {}) {
  const made = open({ auth: { token: token({ sub: name, ...claims }) } }, cluster.edges[edge].url);
  await connected(made);
  return made;
}

/** A socket that must live through the bad input the tests send. */
let bystander;
let bystanderDisconnects;

before(async () => {
  cluster = await Cluster.start(2);
  bystander = await user('bystander');
  bystanderDisconnects = collect(bystander, 'disconnect');
});

after(async () => {
  for (const made of sockets) made.disconnect();
  await cluster.stop();
});

describe('connecting', () => {
  test('with a token in auth: the socket id is the connection id, the user and groups the token says', async () => {
    const ann = await user('ann', 0, { groups: ['lobby'] });
    assert.match(ann.id, /^[0-9a-f]{16}\.\d+$/);
    const me = await ann.emitWithAck('nats/whoami');
    assert.deepEqual(me, { conn: ann.id, user: 'ann', groups: ['lobby'] });
  });

  test('by cookie: $connect decides from the session cookie, through the HTTP handler', async () => {
    const bob = open({ extraHeaders: { cookie: `theme=dark; ${SESSION_COOKIE}=user:bob` } });
    await connected(bob);
    assert.deepEqual(await bob.emitWithAck('http/whoami'), { conn: bob.id, user: 'bob', groups: ['cookie-people'] });
  });

  test('refused: connect_error with the message and code, and socket.io-client does not retry', async () => {
    const forged = open({ auth: { token: `${token({ sub: 'eve' })}x` } });
    const refusal = await connected(forged).catch((error) => error);
    assert.equal(refusal.data.code, 401, refusal.message);
    assert.match(refusal.message, /signature|token/i);
    const anonymous = open();
    const noSession = await connected(anonymous).catch((error) => error);
    assert.equal(noSession.message, 'no session: log in first');
    assert.equal(noSession.data.code, 401);
    await sleep(300);
    assert.equal(anonymous.active, false, 'no reconnection after connect_error');
    assert.equal(forged.active, false);
  });

  test('pings every interval keep a busy client connected (Engine.IO wants pings whatever it receives)', async () => {
    const edge = await cluster.startEdge({ HERALD_PING_INTERVAL_MS: '300', HERALD_PONG_TIMEOUT_MS: '300' });
    const busy = open({ auth: { token: token({ sub: 'busy' }) } }, edge.url);
    await connected(busy);
    const disconnects = collect(busy, 'disconnect');
    const pings = collect(busy.io.engine, 'ping');
    for (let i = 0; i < 30; i++) {
      busy.emit('nats/echo', i);
      await sleep(50);
    }
    assert.deepEqual(disconnects, []);
    assert.ok(pings.length >= 3, `pinged ${pings.length} times in 1.5 s`);
    busy.disconnect();
    await edge.process.kill('SIGTERM');
  });
});

describe('emits', () => {
  test('with an ack, through the NATS handler and the HTTP handler', async () => {
    const ann = await user('ann');
    assert.deepEqual(await ann.emitWithAck('nats/echo', { text: 'hi' }), { text: 'hi' });
    assert.deepEqual(await ann.emitWithAck('http/echo', { text: 'hi' }), { text: 'hi' });
    assert.equal(await ann.emitWithAck('http/echo', 'plain'), 'plain');
    // Several arguments are the details as an array; none is null.
    assert.deepEqual(await ann.emitWithAck('nats/echo', 1, 'two', { three: 3 }), [1, 'two', { three: 3 }]);
    assert.equal(await ann.emitWithAck('nats/echo'), null);
  });

  test('without an ack: the handler gets the action, the client no reply', async () => {
    const ann = await user('ann');
    const anything = [];
    ann.onAny((event, ...args) => anything.push([event, ...args]));
    ann.emit('nats/record', { n: 1 });
    ann.emit('http/record', { n: 2 });
    await eventually(() => cluster.heard.filter((r) => r.conn === ann.id).length === 2, 'both handlers to hear');
    const heard = cluster.heard.filter((r) => r.conn === ann.id).map((r) => [r.action, r.details]);
    assert.deepEqual(heard.sort(), [['http/record', { n: 2 }], ['nats/record', { n: 1 }]]);
    await sleep(100);
    assert.deepEqual(anything, []);
  });

  test('errors reach the ack as {error: {code, message}}, or <action>:error without one', async () => {
    const ann = await user('ann');
    assert.deepEqual(await ann.emitWithAck('nats/fail'), { error: { code: 422, message: 'the handler says no' } });
    assert.deepEqual(await ann.emitWithAck('http/fail'), { error: { code: 422, message: 'the handler says no' } });
    assert.equal((await ann.emitWithAck('no/route', 1)).error.code, 404);
    const failed = next(ann, 'nats/fail:error');
    ann.emit('nats/fail');
    assert.deepEqual(await failed, { code: 422, message: 'the handler says no' });
  });

  test('system actions are emits too: $ping, and $join refused without the right to join', async () => {
    const ann = await user('ann');
    assert.deepEqual(await ann.emitWithAck('$ping', { t: 1 }), { t: 1 });
    const refused = await ann.emitWithAck('$join', { group: 'secret' });
    assert.ok([403, 404].includes(refused.error.code), JSON.stringify(refused));
  });
});

describe('rooms and publishes', () => {
  test('a room joined by a handler effect hears the publish that follows it, on both edges', async () => {
    const [a, b] = [await user('ann', 0), await user('bob', 1)];
    const [heardA, heardB] = [collect(a, 'room/joined'), collect(b, 'room/joined')];
    assert.deepEqual(await a.emitWithAck('nats/join', { room: 'r1' }), { joined: 'r1' });
    assert.deepEqual(await b.emitWithAck('http/join', { room: 'r1' }), { joined: 'r1' });
    await eventually(() => heardA.length === 2 && heardB.length === 1, 'the joins announced in the room');
    assert.deepEqual(heardA, [{ conn: a.id }, { conn: b.id }]);
    assert.deepEqual(heardB, [{ conn: b.id }]);
  });

  test('NATS publishes to users, groups (rooms from the token), connections and all reach sockets as events', async () => {
    const [a, b] = [await user('carol', 0, { groups: ['news'] }), await user('carol', 1)];
    const [onA, onB] = [collect(a, 'note'), collect(b, 'note')];
    await cluster.publish('herald.user.carol', { action: 'note', details: { to: 'user' } });
    await cluster.publish('herald.group.news', { action: 'note', details: { to: 'group' } });
    await cluster.publish(`herald.conn.${b.id}`, { action: 'note', details: { to: 'conn' } });
    await cluster.publish('herald.all', { action: 'note', details: 'everyone' });
    await cluster.publish('herald.user.carol', { action: 'note' });
    await eventually(() => onA.length === 4 && onB.length === 4, 'every delivery');
    // Each subject is a subscription of its own: no order between them.
    const sorted = (seen) => seen.map((details) => JSON.stringify(details) ?? 'none').sort();
    assert.deepEqual(sorted(onA), ['"everyone"', 'none', '{"to":"group"}', '{"to":"user"}']);
    assert.deepEqual(sorted(onB), ['"everyone"', 'none', '{"to":"conn"}', '{"to":"user"}']);
    await sleep(100);
    assert.equal(onA.length, 4, 'each once');
  });

  test('/api/publish to users, groups and connections, with exclude_conn', async () => {
    const [a, b] = [await user('dave', 0, { groups: ['api-room'] }), await user('erin', 1, { groups: ['api-room'] })];
    const [onA, onB] = [collect(a, 'api'), collect(b, 'api')];
    const publish = (to, details, extra = {}) => cluster.api('/api/publish', { to, action: 'api', details, ...extra });
    assert.equal((await publish({ users: ['dave'] }, 1)).status, 200);
    assert.equal((await publish({ groups: ['api-room'] }, 2, { exclude_conn: a.id })).status, 200);
    assert.equal((await publish({ conns: [a.id, b.id] }, 3)).status, 200);
    await eventually(() => onA.length === 2 && onB.length === 2, 'every delivery');
    assert.deepEqual(onA, [1, 3]);
    assert.deepEqual(onB, [2, 3]);
  });

  test('a backend disconnect tells the socket not to reconnect ("io server disconnect")', async () => {
    const gone = await user('frank');
    const reason = next(gone, 'disconnect');
    assert.equal((await cluster.api('/api/disconnect', { users: ['frank'] })).status, 200);
    assert.equal((await reason)[0], 'io server disconnect');
    await sleep(300);
    assert.equal(gone.connected, false);
  });
});

describe('drain', () => {
  test('a draining edge closes its sockets and socket.io-client reconnects to another edge by itself', async () => {
    const extra = await cluster.startEdge();
    cluster.balanced = [extra, cluster.edges[0]];
    const client = open({ auth: { token: token({ sub: 'gina', groups: ['drained'] }) } }, cluster.balancer);
    const first = await connected(client);
    const reasons = collect(client, 'disconnect');
    extra.process.kill('SIGTERM');
    await eventually(() => client.connected && client.id !== first, 'the reconnection elsewhere', 15_000);
    assert.deepEqual(reasons.map(([why]) => why), ['transport close']);
    assert.notEqual(client.id.split('.')[0], first.split('.')[0], 'another edge');
    // Where it is now, the token's room reaches it.
    const note = next(client, 'after-drain');
    await cluster.publish('herald.group.drained', { action: 'after-drain', details: 1 });
    assert.equal(await note, 1);
  });
});

describe('bad input, and no other session harmed', () => {
  test('a namespace other than "/" gets connect_error "Invalid namespace"', async () => {
    const admin = open({ auth: { token: token({ sub: 'ann' }) } }, `${cluster.edges[0].url}/admin`);
    const refusal = await connected(admin).catch((error) => error);
    assert.equal(refusal.message, 'Invalid namespace');
  });

  test('long-polling gets a 400 that says to use transports: ["websocket"]', async () => {
    const response = await fetch(`${cluster.edges[0].url}/socket.io/?EIO=4&transport=polling&t=x`);
    assert.equal(response.status, 400);
    const body = await response.json();
    assert.equal(body.code, 0);
    assert.match(body.message, /transports: \["websocket"\]/);
    // socket.io-client with its default transports (polling first) fails to connect.
    const polling = open({ transports: ['polling'], reconnection: false });
    const refusal = await connected(polling).catch((error) => error);
    assert.match(refusal.message, /xhr poll error/);
  });

  test('malformed packets and binary attachments get errors, and the socket stays', async () => {
    const ann = await user('ann');
    const errors = collect(ann, '$error');
    ann.io.engine.write('2["not json');
    ann.io.engine.write('9');
    await eventually(() => errors.length === 2, 'two $error events');
    assert.ok(errors.every((error) => error.code === 400), JSON.stringify(errors));
    const binary = await ann.emitWithAck('nats/echo', Buffer.from([1, 2, 3]));
    assert.equal(binary.error.code, 400);
    assert.match(binary.error.message, /binary attachments are not supported/);
    assert.deepEqual(await ann.emitWithAck('nats/echo', 'still here'), 'still here');
  });

  test('an oversized packet closes that socket alone (1009), which reconnects', async () => {
    const big = await user('big');
    const neighbour = await user('neighbour');
    const first = big.id;
    const reason = next(big, 'disconnect');
    big.emit('nats/echo', 'x'.repeat(10_000));
    const [why, details] = await reason;
    assert.equal(why, 'transport close');
    assert.equal(details.context.code, 1009);
    await eventually(() => big.connected && big.id !== first, 'the reconnection');
    assert.equal(await neighbour.emitWithAck('nats/echo', 'fine'), 'fine');
  });

  test('the bystander lived through all of it', async () => {
    assert.deepEqual(bystanderDisconnects, []);
    assert.equal(await bystander.emitWithAck('nats/echo', 'ok'), 'ok');
  });
});
