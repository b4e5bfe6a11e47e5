/**
 * One client: Herald's own JS client (clients/js/herald.js) in Node, over
 * the `ws` package, with its default reconnect settings, connected through
 * HAProxy like a browser. It records its sessions, what it received, its
 * reconnect attempts and how its actions went; the analysis reads those
 * records. Members live in the fleet's worker threads (fleet-worker.mjs).
 */

import WebSocket from 'ws';
import { Herald } from '../../clients/js/herald.js';
import { mintToken } from '../../scripts/cluster/token.mjs';

/**
 * Who client `index` is: user `u<index/2>` (every user has two tabs,
 * usually on different edges) in group `g<index mod groups>`.
 */
export function identity(index, groups) {
  return { index, user: `u${Math.floor(index / 2)}`, group: `g${index % groups}` };
}

export class Member {
  /**
   * @param {number} index
   * @param {{ wsUrl: string, secret: string, groups: number }} options
   */
  constructor(index, { wsUrl, secret, groups }) {
    Object.assign(this, identity(index, groups));
    /** @type {Array<{ conn: string, start: number, end?: number, code?: number, reason?: string }>} */
    this.sessions = [];
    /** @type {Map<string, number[]>} Message id → when it was received (more than once: a duplicate). */
    this.received = new Map();
    /** @type {Array<{ at: number, attempt: number, delayMs: number }>} */
    this.attempts = [];
    /** @type {Array<{ at: number, done?: number, ok?: boolean, code?: number, local?: boolean, message?: string }>} */
    this.actions = [];
    const token = mintToken(secret, this.user, { groups: [this.group] });
    this.client = new Herald(wsUrl, { token }, { WebSocket, requestTimeoutMs: 5000 });
    this.client.on('$connected', ({ conn }) => this.sessions.push({ conn, start: Date.now() }));
    this.client.on('$disconnected', ({ code, reason }) => {
      const session = this.current;
      if (session) Object.assign(session, { end: Date.now(), code, reason });
    });
    this.client.on('$reconnecting', ({ attempt, delayMs }) => this.attempts.push({ at: Date.now(), attempt, delayMs }));
    this.client.on('tick', ({ id }) => {
      const times = this.received.get(id);
      if (times) times.push(Date.now());
      else this.received.set(id, [Date.now()]);
    });
  }

  /** The session open now, if any. */
  get current() {
    const last = this.sessions[this.sessions.length - 1];
    return last && last.end === undefined ? last : null;
  }

  /** Sends one `echo` action and records how it ends. */
  act() {
    const record = { at: Date.now() };
    this.actions.push(record);
    this.client.request('echo', { n: this.actions.length }).then(
      () => Object.assign(record, { done: Date.now(), ok: true }),
      (error) => Object.assign(record, { done: Date.now(), ok: false, code: error.code, local: error.local, message: error.message }),
    );
  }

  /** What the analysis reads, as plain data (it crosses threads). */
  record() {
    const { index, user, group, sessions, received, attempts, actions } = this;
    return { index, user, group, sessions, received, attempts, actions };
  }
}
