// Rate-limit abuse: the server closes with 1008 and the client backs off
// hard before reconnecting.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ClientErrorCode } from '../herald.js';
import { connect, next, record } from './client.js';
import { startHerald } from './server.js';

/** @type {Awaited<ReturnType<typeof startHerald>>} */
let server;
before(async () => {
  server = await startHerald({
    env: { HERALD_RATE_LIMIT_PER_SEC: '1', HERALD_RATE_LIMIT_BURST: '2', HERALD_RATE_LIMIT_STRIKES: '2' },
  });
});
after(() => server?.stop());

test('after a 1008 close the next attempt waits between capMs / 2 and capMs', async (t) => {
  const capMs = 2000;
  const client = connect(server, { token: server.token('spammer') }, { backoff: { baseMs: 100, capMs } });
  t.after(() => client.close());
  const events = record(client, ['$disconnected', '$reconnecting', '$connected']);
  await next(client, '$connected');
  const disconnected = next(client, '$disconnected');
  // One frame at a time, so that no frame is in flight when the server
  // closes (unread frames can turn its close into a TCP reset: 1006).
  const answers = [];
  for (let i = 0; i < 10 && client.state === 'connected'; i += 1) {
    answers.push(await client.request('$ping', i).then(() => 'pong', (error) => error.code));
  }
  assert.deepEqual(answers, ['pong', 'pong', 429, 429, ClientErrorCode.DISCONNECTED]);
  const { code, willReconnect } = await disconnected;
  const closedAt = Date.now();
  assert.equal(code, 1008);
  assert.equal(willReconnect, true);

  // $reconnecting is emitted right after $disconnected.
  const { delayMs } = events.find((e) => e.action === '$reconnecting').details;
  assert.ok(delayMs >= capMs / 2 && delayMs <= capMs, `delay ${delayMs}`);
  await next(client, '$connected', { timeout: capMs + 3000 });
  assert.ok(Date.now() - closedAt >= capMs / 2 - 50, 'not before half the cap');
});
