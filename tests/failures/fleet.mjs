/**
 * The clients, spread over worker threads (fleet-worker.mjs) of up to
 * CLIENTS_PER_WORKER each: one event loop would queue a burst of hundreds of
 * reconnects behind each other and add its own delay to what is measured.
 * Each worker also reports how late its event loop ran, so the results say
 * how much of a figure the harness itself may account for.
 *
 * Client i is user `u<i/2>` and in group `g<i mod groups>` (member.mjs), so
 * who receives what is known here without asking the workers.
 */

import { Worker } from 'node:worker_threads';
import { identity } from './member.mjs';

const CLIENTS_PER_WORKER = 100;

/**
 * The protocols the fleet can speak (member.mjs), the close code each
 * one's clients get when an edge drains (rolling restart), and whether
 * they send actions (Pusher has no request/reply).
 */
export const PROTOCOLS = {
  native: { restartCloseCode: 1012, actions: true },
  pusher: { restartCloseCode: 4200, actions: false },
};

export class Fleet {
  /**
   * @param {{ size: number, groups: number, wsUrl: string, secret: string, actionIntervalMs: number, protocol: string, pusherApp?: object }} options
   */
  constructor(options) {
    this.size = options.size;
    this.protocol = PROTOCOLS[options.protocol];
    /** Who each client is (index, user, group). */
    this.members = Array.from({ length: options.size }, (_, i) => identity(i, options.groups));
    this.workers = [];
    for (let first = 0; first < options.size; first += CLIENTS_PER_WORKER) {
      const count = Math.min(CLIENTS_PER_WORKER, options.size - first);
      this.workers.push(new FleetWorker({ first, count, options }));
    }
  }

  /** Connects every client, one worker's share at a time. */
  async connect() {
    for (const worker of this.workers) {
      await worker.ask('connect');
      await this.allConnected(30_000);
    }
  }

  /** Resolves once every client is connected; rejects after `timeoutMs`. */
  async allConnected(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const waiting = (await this.#askAll('waiting')).reduce((a, b) => a + b, 0);
      if (waiting === 0) return;
      if (Date.now() > deadline) throw new Error(`${waiting} clients not connected within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  startActions() {
    return this.protocol.actions ? this.#askAll('startActions') : Promise.resolve();
  }

  /** Starts measuring the workers' event-loop lag afresh. */
  resetLag() {
    return this.#askAll('resetLag');
  }

  /**
   * Every client's records (sessions, received, attempts, actions), and the
   * worst event-loop lag of any worker since `resetLag`.
   */
  async snapshot() {
    const parts = await this.#askAll('snapshot');
    return {
      members: parts.flatMap((p) => p.members),
      lagP99: Math.max(...parts.map((p) => p.lagP99)),
      lagMax: Math.max(...parts.map((p) => p.lagMax)),
    };
  }

  /** Indices of the clients missing the probe `prefix<user>` or `prefix<group>`. */
  async missing(prefix) {
    return (await this.#askAll('missing', prefix)).flat();
  }

  async close() {
    await this.#askAll('close');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** The clients a message to `target` ({user} or {group}) reaches. */
  receivers(target) {
    return this.members.filter((m) => (target.user ? m.user === target.user : m.group === target.group));
  }

  /** Every user and every group, by name. */
  get users() {
    return [...new Set(this.members.map((m) => m.user))];
  }

  get groups() {
    return [...new Set(this.members.map((m) => m.group))];
  }

  #askAll(name, argument) {
    return Promise.all(this.workers.map((w) => w.ask(name, argument)));
  }
}

/** One worker thread, asked by name and answering in turn. */
class FleetWorker {
  constructor(workerData) {
    this.worker = new Worker(new URL('./fleet-worker.mjs', import.meta.url), { workerData });
    this.next = 0;
    /** @type {Map<number, (result: any) => void>} */
    this.waiting = new Map();
    this.worker.on('message', ({ id, result }) => {
      this.waiting.get(id)?.(result);
      this.waiting.delete(id);
    });
    this.failed = new Promise((_, reject) => this.worker.once('error', reject));
    this.failed.catch(() => {});
  }

  ask(name, argument) {
    const id = this.next++;
    const answer = new Promise((resolve) => this.waiting.set(id, resolve));
    this.worker.postMessage({ id, name, argument });
    return Promise.race([answer, this.failed]);
  }

  terminate() {
    return this.worker.terminate();
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
