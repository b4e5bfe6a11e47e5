/**
 * Pusher presence channels exact across edges (docs/adr/0011): the real
 * pusher-js 8 and Laravel Echo 2 on three `herald edge` processes on a
 * real nats-server. One user's tabs on two edges are one member, added
 * once and removed when the last tab leaves; a SIGKILLed edge's members
 * are removed on the others within the bound the ADR states; the member
 * limit holds across edges.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Cluster, collect, connected, echoClient, eventually, next, pusherClient, subscribed } from './cluster.js';

/** The member limit the edges run with here. */
const MAX_MEMBERS = 3;
/** What the ADR states a SIGKILLed edge's members take to leave (5 s), with room for a loaded CI machine. */
const DEAD_EDGE_BOUND_MS = 8_000;

let cluster;
const clients = [];

function client(port, user) {
  const made = pusherClient(port, { member: { user_id: user, user_info: { name: `name of ${user}` } } });
  clients.push(made);
  return made;
}

/** Subscribes `client` to presence channel `name` and resolves with its channel once subscribed. */
async function join(made, name) {
  await connected(made);
  const channel = made.subscribe(name);
  await subscribed(channel);
  return channel;
}

function ids(channel) {
  const seen = [];
  channel.members.each((member) => seen.push(member.id));
  return seen.sort();
}

before(async () => {
  cluster = await Cluster.start(2, { HERALD_PUSHER_MAX_PRESENCE_MEMBERS: String(MAX_MEMBERS) });
});

after(async () => {
  for (const made of clients) made.disconnect();
  await cluster.stop();
});

describe('presence across edges', () => {
  test("one user's tabs on two edges are one member: added once, removed when the last tab leaves", async () => {
    const [edge0, edge1] = cluster.edges;
    const bob = client(edge0.port, 'bob');
    const watching = await join(bob, 'presence-tabs');
    const added = collect(watching, 'pusher:member_added');
    const removed = collect(watching, 'pusher:member_removed');

    const tab1 = client(edge1.port, 'alice');
    await join(tab1, 'presence-tabs');
    await eventually(() => added.length === 1, 'alice added on the other edge');
    assert.deepEqual(added[0].data, { id: 'alice', info: { name: 'name of alice' } });

    // A second tab, on bob's edge: no second member_added.
    const tab2 = client(edge0.port, 'alice');
    const second = await join(tab2, 'presence-tabs');
    assert.deepEqual(ids(second), ['alice', 'bob']);

    // Laravel Echo's here() on the other edge lists every member on every edge.
    const { echo, client: carolClient } = echoClient(edge1.port, { member: { user_id: 'carol', user_info: {} } });
    clients.push(carolClient);
    const here = await new Promise((resolve) => echo.join('tabs').here(resolve));
    assert.deepEqual(here.map((info) => info.name ?? '(carol)').sort(), ['(carol)', 'name of alice', 'name of bob']);
    assert.deepEqual(Object.keys(carolClient.channel('presence-tabs').members.members).sort(), ['alice', 'bob', 'carol']);
    await eventually(() => added.length === 2, 'carol added');
    assert.equal(added[1].data.id, 'carol');

    // The first tab goes: alice is still on bob's edge.
    tab1.disconnect();
    const carolSees = carolClient.channel('presence-tabs');
    const carolRemoved = collect(carolSees, 'pusher:member_removed');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(removed, [], 'alice has a tab left');
    assert.deepEqual(carolRemoved, []);
    assert.deepEqual(ids(watching), ['alice', 'bob', 'carol']);

    // The last tab leaves (unsubscribing, not disconnecting): removed everywhere, once.
    tab2.unsubscribe('presence-tabs');
    await eventually(() => removed.length === 1 && carolRemoved.length === 1, 'alice removed on both edges');
    assert.deepEqual(removed[0].data, { id: 'alice', info: { name: 'name of alice' } });
    assert.deepEqual(ids(watching), ['bob', 'carol']);
    echo.leave('tabs');
    carolClient.disconnect();
    await eventually(() => removed.length === 2, 'carol removed when her connection closes');
  });

  test("a SIGKILLed edge's members are removed on the other edges within the bound", async () => {
    // Joined at once: a new edge's first second is no window (ADR 0011).
    const doomed = await cluster.startEdge({ HERALD_PUSHER_MAX_PRESENCE_MEMBERS: String(MAX_MEMBERS) });
    const watcher = client(cluster.edges[0].port, 'watcher');
    const watching = await join(watcher, 'presence-crash');
    const ghost = client(doomed.port, 'ghost');
    // A user also on a surviving edge stays.
    const stays = client(doomed.port, 'stays');
    const staysElsewhere = client(cluster.edges[1].port, 'stays');
    const added = next(watching, 'pusher:member_added');
    await join(ghost, 'presence-crash');
    assert.equal((await added).data.id, 'ghost');
    await join(stays, 'presence-crash');
    const elsewhere = await join(staysElsewhere, 'presence-crash');
    await eventually(() => ids(watching).length === 3 && ids(elsewhere).length === 3, 'every member seen');

    const removed = collect(watching, 'pusher:member_removed');
    const killedAt = Date.now();
    doomed.process.kill('SIGKILL');
    await eventually(() => removed.length >= 1, 'the dead edge\'s members removed', DEAD_EDGE_BOUND_MS);
    const took = Date.now() - killedAt;
    process.stderr.write(`# members of a SIGKILLed edge removed after ${took} ms\n`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(removed.map((event) => event.data.id), ['ghost'], 'stays is still on another edge');
    assert.deepEqual(ids(watching), ['stays', 'watcher']);
    // Each edge sweeps on its own second: the other one within the bound too.
    await eventually(() => !ids(elsewhere).includes('ghost'), 'ghost removed on the other edge', DEAD_EDGE_BOUND_MS - took);

    // A member joining afterwards sees the same list.
    const late = client(cluster.edges[1].port, 'late');
    assert.deepEqual(ids(await join(late, 'presence-crash')), ['late', 'stays', 'watcher']);
    cluster.edges = cluster.edges.filter((edge) => edge !== doomed);
  });

  test('the member limit counts users on every edge, not tabs', async () => {
    const [edge0, edge1] = cluster.edges;
    for (const [port, user] of [[edge0.port, 'u1'], [edge1.port, 'u2'], [edge0.port, 'u3'], [edge1.port, 'u3']]) {
      await join(client(port, user), 'presence-full');
    }
    const refused = client(edge1.port, 'u4');
    await connected(refused);
    await assert.rejects(subscribed(refused.subscribe('presence-full')), (error) => error.status === 4100);
    // The refused connection stays, and can join another channel.
    const other = refused.subscribe('presence-other');
    await subscribed(other);
    assert.deepEqual(ids(other), ['u4']);
  });
});
