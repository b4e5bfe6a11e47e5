// Missed-message recovery (PROTOCOL 5.25): with history on, a client whose
// edge is killed mid-stream keeps its positions, resumes on reconnect and
// gets every frame it missed, once and in order, then `$recovered`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, next } from './client.js';
import { sleep, startHerald } from './server.js';

/** @type {Awaited<ReturnType<typeof startHerald>>} */
let server;
before(async () => {
  server = await startHerald({ jetstream: true, env: { HERALD_HISTORY: 'users,groups' } });
});
after(() => server?.stop());

test('an edge killed mid-stream: every note arrives once, in order, and $recovered says so', async (t) => {
  const client = connect(server, { token: server.token('alice', { claims: { groups: ['team'], join: ['lobby'] } }) });
  t.after(() => client.close());
  const notes = [];
  const lobby = [];
  client.on('note', ({ n, to }) => (to === 'lobby' ? lobby : notes).push(n));
  const recoveries = [];
  client.on('$recovered', ({ recovered }) => recoveries.push(recovered));
  const first = await next(client, '$recovered');
  assert.equal(first.recovered, false, 'a first connection recovers nothing');
  assert.deepEqual(Object.keys(first.offsets).sort(), ['group:team', 'user']);
  // A group joined after connecting is joined again from its position.
  const joined = await client.join('lobby');
  assert.equal(joined.recovered, false, 'a first join recovers nothing');
  assert.deepEqual(Object.keys(joined.offsets), ['group:lobby']);

  const COUNT = 150;
  const publishing = (async () => {
    for (let n = 0; n < COUNT; n += 1) {
      await server.publish({ to: { users: ['alice'] }, action: 'note', details: { n } });
      await server.publish({ to: { groups: ['lobby'] }, action: 'note', details: { n, to: 'lobby' } });
      await sleep(5);
    }
  })();
  while (notes.length < 30) await sleep(5);
  const recovered = next(client, '$recovered', { timeout: 20_000, where: (details) => details.group === undefined });
  const lobbyRecovered = next(client, '$recovered', { timeout: 20_000, where: (details) => details.group === 'lobby' });
  await server.restart('SIGKILL');
  assert.equal((await recovered).recovered, true, 'resumed within the history: recovered');
  assert.equal((await lobbyRecovered).recovered, true, 'the joined group re-joined from its position: recovered');
  await publishing;
  const deadline = Date.now() + 5000;
  while ((notes.length < COUNT || lobby.length < COUNT) && Date.now() < deadline) await sleep(20);
  assert.deepEqual(notes, [...Array(COUNT).keys()], 'every note once, in order');
  assert.deepEqual(lobby, [...Array(COUNT).keys()], 'every note to the joined group once, in order');
  assert.deepEqual(recoveries, [false, true, true]);
});
