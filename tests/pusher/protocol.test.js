/**
 * Pusher protocol 7 on Herald's edges, with the real pusher-js 8 and Laravel
 * Echo 2, two edges on a real nats-server, and Pusher's server SDK signing
 * channels: connection, socket ids, public, private and encrypted
 * channels, deliveries from NATS across edges, refusals, drain.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  APP,
  Cluster,
  collect,
  connected,
  echoClient,
  eventually,
  next,
  pusherClient,
  sleep,
  subscribed,
} from './cluster.js';
import { connIdOf, groupSubject } from './names.js';
import Pusher from 'pusher-js';

let cluster;
let bus;
const clients = [];

/** A pusher-js client, disconnected after the tests. */
function client(port, options) {
  const made = pusherClient(port, options);
  clients.push(made);
  return made;
}

before(async () => {
  cluster = await Cluster.start(2);
  bus = await cluster.backendBus();
});

after(async () => {
  for (const made of clients) made.disconnect();
  await cluster.stop();
});

describe('connection', () => {
  test('connection_established gives a socket id of digits that names the Herald connection', async () => {
    const pusher = client(cluster.edges[0].port);
    const socketId = await connected(pusher);
    assert.match(socketId, /^\d+\.\d+$/);
    // The socket id is the connection id: a publish to it reaches this
    // client only, on pusher-js's connection-wide bindings.
    const other = client(cluster.edges[0].port);
    await connected(other);
    const missed = collect(other, 'direct');
    const got = next(pusher, 'direct');
    await bus.publish(`herald.conn.${connIdOf(socketId)}`, { action: 'direct', details: { n: 1 } });
    assert.deepEqual((await got).data, { n: 1 });
    await sleep(100);
    assert.equal(missed.length, 0);
  });

  test('pings are answered: a client pinging every 300 ms stays connected', async () => {
    const pusher = client(cluster.edges[0].port, { activityTimeout: 300, pongTimeout: 1000 });
    await connected(pusher);
    const changes = collect(pusher.connection, 'state_change');
    await sleep(2500);
    assert.deepEqual(changes, [], 'no reconnection: every pusher:ping got its pusher:pong');
  });

  test('an unknown app key is refused with 4001 and pusher-js does not retry', async () => {
    const stranger = new Pusher('no-such-key', {
      cluster: 'herald',
      wsHost: '127.0.0.1',
      wsPort: cluster.edges[0].port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
    });
    clients.push(stranger);
    const errors = collect(stranger.connection, 'error');
    const states = collect(stranger.connection, 'state_change');
    await eventually(() => errors.length > 0, 'the refusal');
    assert.equal(errors[0].data.error.data.code, 4001);
    await sleep(1500);
    assert.deepEqual(
      states.map((change) => change.data.current),
      ['disconnected'],
      'pusher-js gave up: 4000-4099 means do not reconnect',
    );
  });
});

describe('channels', () => {
  test('a NATS publish to a group reaches pusher-js subscribers of the channel on both edges, once each', async () => {
    const [a, b] = [client(cluster.edges[0].port), client(cluster.edges[1].port)];
    const [chatA, chatB] = [a.subscribe('chat'), b.subscribe('chat')];
    await Promise.all([subscribed(chatA), subscribed(chatB)]);
    const [seenA, seenB] = [collect(chatA, 'message'), collect(chatB, 'message')];
    await bus.publish(groupSubject('chat'), { action: 'message', details: { text: 'hi' } });
    await bus.publish(groupSubject('chat'), { action: 'message', details: 'plain text' });
    await eventually(() => seenA.length === 2 && seenB.length === 2, 'both deliveries on both edges');
    assert.deepEqual(seenA.map((event) => event.data), [{ text: 'hi' }, 'plain text']);
    assert.deepEqual(seenB.map((event) => event.data), [{ text: 'hi' }, 'plain text']);
    // Unsubscribed: nothing more.
    a.unsubscribe('chat');
    await sleep(100);
    await bus.publish(groupSubject('chat'), { action: 'message', details: 3 });
    await eventually(() => seenB.length === 3, 'the third delivery to the subscriber left');
    await sleep(100);
    assert.equal(seenA.length, 2);
  });

  test('Herald-Exclude-Conn with a socket id skips that client', async () => {
    const [a, b] = [client(cluster.edges[0].port), client(cluster.edges[0].port)];
    const [chatA, chatB] = [a.subscribe('excl'), b.subscribe('excl')];
    await Promise.all([subscribed(chatA), subscribed(chatB)]);
    const seenA = collect(chatA, 'e');
    const got = next(chatB, 'e');
    await bus.publish(groupSubject('excl'), { action: 'e', details: {} }, connIdOf(a.connection.socket_id));
    await got;
    await sleep(100);
    assert.equal(seenA.length, 0);
  });

  test('private and encrypted channels need a signature from the app secret', async () => {
    const pusher = client(cluster.edges[1].port);
    await subscribed(pusher.subscribe('private-App.Models.User.1'));
    await subscribed(pusher.subscribe('private-encrypted-secrets'));
    // Signed with another secret: refused, and the connection stays.
    const forger = client(cluster.edges[1].port, {
      channelAuthorization: {
        customHandler: ({ socketId, channelName }, callback) =>
          callback(null, { auth: `${APP.key}:${'0'.repeat(64)}`, channel: channelName, socketId }),
      },
    });
    const refusal = await subscribed(forger.subscribe('private-App.Models.User.1')).catch((error) => error);
    assert.equal(refusal.status, 401);
    assert.equal(refusal.type, 'AuthError');
    assert.equal(forger.connection.state, 'connected');
    await subscribed(forger.subscribe('public-is-fine'));
  });

  test('bad channel names get a subscription error, and the connection stays', async () => {
    const pusher = client(cluster.edges[0].port);
    await connected(pusher);
    const refusal = await subscribed(pusher.subscribe('no spaces allowed')).catch((error) => error);
    assert.equal(refusal.status, 400);
    assert.equal(pusher.connection.state, 'connected');
  });
});

describe('Laravel Echo', () => {
  test('public and private channels with dotted names receive broadcasts, across edges', async () => {
    const { echo: first } = echoClient(cluster.edges[0].port);
    const { echo: second } = echoClient(cluster.edges[1].port);
    const shipped = [];
    first.channel('orders').listen('OrderShipped', (event) => shipped.push(['first', event]));
    second.channel('orders').listen('.App\\Events\\OrderShipped', (event) => shipped.push(['second', event]));
    const notices = [];
    second.private('App.Models.User.1').notification((notice) => notices.push(notice));
    await Promise.all([
      subscribed(first.connector.channels.orders.subscription),
      subscribed(second.connector.channels.orders.subscription),
      subscribed(second.connector.channels['private-App.Models.User.1'].subscription),
    ]);
    await bus.publish(groupSubject('orders'), { action: 'App\\Events\\OrderShipped', details: { order: { id: 7 } } });
    const notification = { id: 'n1', type: 'App\\Notifications\\Invoice', amount: 3 };
    await bus.publish(groupSubject('private-App.Models.User.1'), {
      action: 'Illuminate\\Notifications\\Events\\BroadcastNotificationCreated',
      details: notification,
    });
    await eventually(() => shipped.length === 2 && notices.length === 1, 'the broadcasts');
    assert.deepEqual(shipped.map(([who]) => who).sort(), ['first', 'second']);
    assert.deepEqual(shipped[0][1], { order: { id: 7 } });
    assert.deepEqual(notices[0], notification);
    first.disconnect();
    second.disconnect();
  });
});

describe('drain', () => {
  test('a draining edge closes Pusher clients with 4200, and pusher-js reconnects at once', async () => {
    const extra = await cluster.startEdge();
    const pusher = client(extra.port);
    await connected(pusher);
    const errors = collect(pusher.connection, 'error');
    const states = collect(pusher.connection, 'state_change');
    extra.process.kill('SIGTERM');
    await eventually(() => states.some((change) => change.data.current === 'connecting'), 'pusher-js to reconnect');
    assert.equal(errors[0]?.data.data.code, 4200, JSON.stringify(errors));
    pusher.disconnect();
  });
});
