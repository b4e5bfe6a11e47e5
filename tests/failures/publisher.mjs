/**
 * The backend's side: a steady stream of messages to users and groups in
 * turn, through the backend HTTP API behind HAProxy (so through the routers
 * and NATS, as a PHP backend would send them), and probes that reach every
 * client at once.
 */

import { sleep } from './fleet.mjs';

/** Probe messages published at once. */
const PROBE_BATCH = 20;

export class Publisher {
  /**
   * @param {import('./cluster.mjs').Cluster} cluster
   * @param {import('./fleet.mjs').Fleet} fleet
   * @param {number} intervalMs Time between two messages.
   */
  constructor(cluster, fleet, intervalMs) {
    this.cluster = cluster;
    this.fleet = fleet;
    this.intervalMs = intervalMs;
    /**
     * Every message, in order. `sent` and `answered` bound when it was
     * published; `accepted` is whether the API said it was.
     * @type {Array<{ id: string, target: { user?: string, group?: string }, sent: number, answered?: number, accepted?: boolean, error?: string }>}
     */
    this.messages = [];
    /** @type {Set<Promise<void>>} */
    this.inFlight = new Set();
    this.next = 0;
    this.probes = 0;
  }

  start() {
    const users = this.fleet.users;
    const groups = this.fleet.groups;
    this.timer = setInterval(() => {
      const n = this.next++;
      const target = n % 2 === 0 ? { user: users[(n / 2) % users.length] } : { group: groups[((n - 1) / 2) % groups.length] };
      this.#publish(`m${n}`, target);
    }, this.intervalMs);
  }

  async stop() {
    clearInterval(this.timer);
    await Promise.all(this.inFlight);
  }

  /**
   * Publishes one message to every user and every group, and waits until
   * every client has both of its own. Returns the clients still missing
   * one after `timeoutMs` (none when delivery works for everyone). This
   * checks delivery, not the API: a refused publish is sent again, and a
   * few at a time, so hundreds of them do not time out on a busy machine.
   */
  async probe(timeoutMs) {
    const round = this.probes++;
    const deadline = Date.now() + timeoutMs;
    const targets = [...this.fleet.users.map((user) => ({ user })), ...this.fleet.groups.map((group) => ({ group }))];
    while (targets.length > 0 && Date.now() < deadline) {
      const batch = targets.splice(0, PROBE_BATCH);
      const sent = await Promise.all(batch.map((target) => this.#publish(`p${round}.${target.user ?? target.group}`, target, false)));
      targets.push(...batch.filter((_, i) => !sent[i].accepted));
    }
    for (;;) {
      const missing = await this.fleet.missing(`p${round}.`);
      if (missing.length === 0 || Date.now() > deadline) return missing;
      await sleep(20);
    }
  }

  /** Publishes `tick {id}` to `target`; kept in `messages` unless it is a probe. */
  #publish(id, target, kept = true) {
    const message = { id, target, sent: Date.now() };
    if (kept) this.messages.push(message);
    const to = target.user ? { users: [target.user] } : { groups: [target.group] };
    const done = this.cluster
      .api('POST', '/api/publish', { to, action: 'tick', details: { id } })
      .then(
        () => Object.assign(message, { answered: Date.now(), accepted: true }),
        (error) => Object.assign(message, { answered: Date.now(), accepted: false, error: error.message }),
      )
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
    return done;
  }
}
