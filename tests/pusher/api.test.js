/**
 * Pusher's HTTP API and webhooks answered from real edges: Pusher's own
 * server SDK (npm `pusher`) against a `herald router`, pusher-js clients on
 * two `herald edge` processes, all on a real nats-server. Channel queries
 * and a trigger's `info` are what the edges hold; `terminateUserConnections`
 * closes a signed-in user's pusher-js connections on both edges; webhooks
 * (received here, their signatures checked by the SDK) are decided across
 * the edges: `channel_vacated` only when no edge holds the channel.
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { Cluster, collect, connected, eventually, next, pusherClient, sleep, subscribed } from './cluster.js';

let cluster;
let router;
const clients = [];
/** Every webhook event received, with the batch's checks. */
const hooks = [];
let receiver;

function client(port, options) {
  const made = pusherClient(port, options);
  clients.push(made);
  return made;
}

async function joined(made, name) {
  await connected(made);
  const channel = made.subscribe(name);
  await subscribed(channel);
  return channel;
}

/** The body of a successful API call. */
async function ok(call) {
  const response = await call;
  assert.equal(response.status, 200);
  return response.json();
}

/** The webhook events named `name` for `channel` received so far. */
function hooked(name, channel) {
  return hooks.filter((event) => event.name === name && event.channel === channel);
}

before(async () => {
  receiver = createServer((request, response) => {
    let rawBody = '';
    request.on('data', (chunk) => (rawBody += chunk));
    request.on('end', () => {
      // Pusher's SDK checks the key and the signature, as a Laravel app would.
      const webhook = router.api.webhook({ headers: request.headers, rawBody });
      assert.ok(webhook.isValid(), `a webhook with a valid signature: ${rawBody}`);
      const body = JSON.parse(rawBody);
      assert.equal(typeof body.time_ms, 'number');
      hooks.push(...webhook.getEvents());
      response.end('ok');
    });
  }).listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  // Edges decide the webhooks an app wants, routers send them: both know the URL.
  const hook = { HERALD_PUSHER_WEBHOOK_URL: `http://127.0.0.1:${receiver.address().port}/pusher/webhook` };
  cluster = await Cluster.start(2, hook);
  // Answers from every edge even on a loaded CI machine (the default is 500 ms).
  router = await cluster.startRouter({ ...hook, HERALD_PRESENCE_TIMEOUT_MS: '3000' });
});

after(async () => {
  for (const made of clients) made.disconnect();
  await cluster.stop();
  receiver.closeAllConnections();
  receiver.close();
});

describe('channel queries answered by the edges', () => {
  test('channels, one channel, its users and a trigger\'s info count every edge, each user once', async () => {
    const [edge0, edge1] = cluster.edges;
    const member = (user) => ({ member: { user_id: user, user_info: { n: user } } });
    await joined(client(edge0.port, member('ann')), 'presence-lobby');
    await joined(client(edge1.port, member('ann')), 'presence-lobby');
    await joined(client(edge1.port, member('ben')), 'presence-lobby');
    await joined(client(edge0.port), 'news');
    await joined(client(edge1.port), 'news');
    await joined(client(edge1.port), 'private-App.Models.User.1');
    const api = router.api;
    // The router learns of the edges from their heartbeats (every second):
    // until it has heard both, it waits for one answer only.
    await eventually(async () => {
      const news = await ok(api.get({ path: '/channels/news', params: { info: 'subscription_count' } }));
      return news.subscription_count === 2;
    }, 'the router to hear both edges');

    const all = await ok(api.get({ path: '/channels', params: { info: 'subscription_count' } }));
    assert.deepEqual(all.channels, {
      news: { subscription_count: 2 },
      'presence-lobby': { subscription_count: 3 },
      'private-App.Models.User.1': { subscription_count: 1 },
    });
    const presence = await ok(api.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
    assert.deepEqual(presence.channels, { 'presence-lobby': { user_count: 2 } });

    const lobby = await ok(api.get({ path: '/channels/presence-lobby', params: { info: 'user_count,subscription_count' } }));
    assert.deepEqual(lobby, { occupied: true, user_count: 2, subscription_count: 3 });
    const users = await ok(api.get({ path: '/channels/presence-lobby/users' }));
    assert.deepEqual(users.users.map((user) => user.id).sort(), ['ann', 'ben']);
    assert.deepEqual(await ok(api.get({ path: '/channels/empty' })), { occupied: false });

    const triggered = await ok(api.trigger('news', 'hello', { a: 1 }, { info: 'subscription_count' }));
    assert.deepEqual(triggered, { channels: { news: { subscription_count: 2 } } });
  });
});

describe('terminate_connections', () => {
  test("closes a signed-in user's pusher-js connections on both edges, and nobody else's", async () => {
    const [edge0, edge1] = cluster.edges;
    const tabs = [client(edge0.port, { user: { id: 'zoe' } }), client(edge1.port, { user: { id: 'zoe' } })];
    const other = client(edge1.port, { user: { id: 'yan' } });
    for (const made of [...tabs, other]) {
      await connected(made);
      made.signin();
      await eventually(() => made.user.user_data !== null, 'signed in');
    }
    const errors = tabs.map((tab) => collect(tab.connection, 'error'));
    const news = await joined(other, 'news');
    await ok(router.api.terminateUserConnections('zoe'));
    await eventually(() => errors.every((seen) => seen.some((error) => error.data?.data?.code === 4009)), '4009 on both tabs');
    await eventually(() => tabs.every((tab) => tab.connection.state !== 'connected'), 'both tabs closed');
    assert.equal(other.connection.state, 'connected');
    const got = next(news, 'still-here');
    await ok(router.api.trigger('news', 'still-here', 'yes'));
    assert.equal((await got).data, 'yes');
  });
});

describe('webhooks decided across edges', () => {
  test('occupied once when a channel is held anywhere, vacated only when no edge holds it', async () => {
    const [edge0, edge1] = cluster.edges;
    const first = client(edge0.port);
    await joined(first, 'room-42');
    await eventually(() => hooked('channel_occupied', 'room-42').length === 1, 'channel_occupied');
    const second = client(edge1.port);
    await joined(second, 'room-42');
    first.unsubscribe('room-42');
    await sleep(1000);
    assert.equal(hooked('channel_occupied', 'room-42').length, 1, 'occupied once');
    assert.equal(hooked('channel_vacated', 'room-42').length, 0, 'the other edge still holds it');
    second.unsubscribe('room-42');
    await eventually(() => hooked('channel_vacated', 'room-42').length === 1, 'channel_vacated');
    await sleep(500);
    assert.equal(hooked('channel_vacated', 'room-42').length, 1, 'vacated once');
  });

  test('member_added and member_removed once per user across edges', async () => {
    const [edge0, edge1] = cluster.edges;
    const tab1 = client(edge0.port, { member: { user_id: 'kim', user_info: {} } });
    const tab2 = client(edge1.port, { member: { user_id: 'kim', user_info: {} } });
    await joined(tab1, 'presence-hooks');
    await joined(tab2, 'presence-hooks');
    await eventually(() => hooked('member_added', 'presence-hooks').length === 1, 'member_added');
    tab1.unsubscribe('presence-hooks');
    await sleep(800);
    assert.equal(hooked('member_removed', 'presence-hooks').length, 0, 'kim is still on the other edge');
    tab2.unsubscribe('presence-hooks');
    await eventually(() => hooked('member_removed', 'presence-hooks').length === 1, 'member_removed');
    assert.deepEqual(hooked('member_added', 'presence-hooks')[0].user_id, 'kim');
    assert.equal(hooked('member_added', 'presence-hooks').length, 1);
  });
});
