/**
 * A worker thread holding a share of the fleet's clients, so that a burst of
 * reconnects is handled by several event loops, as it would be by many
 * browsers, rather than queued behind each other in one. Answers the
 * fleet's requests (fleet.mjs) by name.
 */

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { Member, PusherMember } from './member.mjs';

const { first, count, options } = workerData;
/** @type {Member[]} */
const members = [];
/** @type {ReturnType<typeof setInterval>[]} */
const timers = [];
/** How late this thread's event loop runs: time the harness adds to what it measures. */
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();

const requests = {
  /** Opens this worker's clients. */
  connect() {
    const Client = options.protocol === 'pusher' ? PusherMember : Member;
    for (let i = first; i < first + count; i += 1) members.push(new Client(i, options));
  },

  /** How many clients are not connected now. */
  waiting() {
    return members.filter((m) => !m.current).length;
  },

  /** Every client sends an action every `actionIntervalMs`, at its own phase, while connected. */
  startActions() {
    const every = options.actionIntervalMs;
    for (const member of members) {
      const phase = setTimeout(() => timers.push(setInterval(() => member.current && member.act(), every)), Math.random() * every);
      timers.push(phase);
    }
  },

  /** Every client's records, and the event-loop lag since `resetLag` (ms). */
  snapshot() {
    return { members: members.map((m) => m.record()), lagP99: lag.percentile(99) / 1e6, lagMax: lag.max / 1e6 };
  },

  resetLag() {
    lag.reset();
  },

  /** Indices of clients missing the probe `prefix<user>` or `prefix<group>`. */
  missing(prefix) {
    return members.filter((m) => !m.received.has(prefix + m.user) || !m.received.has(prefix + m.group)).map((m) => m.index);
  },

  close() {
    for (const timer of timers) clearInterval(timer);
    for (const member of members) member.close();
    lag.disable();
  },
};

parentPort.on('message', ({ id, name, argument }) => {
  parentPort.postMessage({ id, result: requests[name](argument) });
});
