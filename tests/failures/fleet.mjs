/**
 * The clients: Herald's own JS client (clients/js/herald.js) in Node, over
 * the `ws` package, with its default reconnect settings, each connected
 * through HAProxy like a browser. Every client records its sessions, what
 * it received and how its actions went; the analysis reads those records.
 *
 * Client i is user `u<i/2>` (so every user has two tabs, usually on
 * different edges) and in group `g<i mod groups>`, both from its token.
 */

import WebSocket from 'ws';
import { Herald } from '../../clients/js/herald.js';
import { mintToken } from '../../scripts/cluster/token.mjs';

/** Clients opened at once while connecting the fleet. */
const CONNECT_BATCH = 50;

/**
 * The protocols the fleet can speak, and the close code each one's clients
 * get when an edge drains (rolling restart). Only Herald's native protocol
 * exists today; the Pusher path will close with 4200 on drain: add it here
 * with a pusher-js client, and the rolling-restart scenario checks it.
 */
export const PROTOCOLS = {
  native: { restartCloseCode: 1012 },
};

/** One client and what happened to it. */
export class Member {
  /**
   * @param {number} index
   * @param {{ wsUrl: string, secret: string, groups: number }} options
   */
  constructor(index, { wsUrl, secret, groups }) {
    this.index = index;
    this.user = `u${Math.floor(index / 2)}`;
    this.group = `g${index % groups}`;
    /** @type {Array<{ conn: string, start: number, end?: number, code?: number, reason?: string }>} */
    this.sessions = [];
    /** @type {Map<string, number>} Message id → times received. */
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
    this.client.on('tick', ({ id }) => this.received.set(id, (this.received.get(id) ?? 0) + 1));
  }

  /** The session open now, if any. */
  get current() {
    const last = this.sessions[this.sessions.length - 1];
    return last && last.end === undefined ? last : null;
  }

  /** The session that was open at `time`, if any. */
  sessionAt(time) {
    return this.sessions.find((s) => s.start <= time && (s.end === undefined || s.end >= time)) ?? null;
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
}

export class Fleet {
  /**
   * @param {{ size: number, groups: number, wsUrl: string, secret: string, actionIntervalMs: number }} options
   */
  constructor({ size, groups, wsUrl, secret, actionIntervalMs }) {
    this.options = { size, groups, wsUrl, secret, actionIntervalMs };
    this.protocol = PROTOCOLS.native;
    /** @type {Member[]} */
    this.members = [];
    /** @type {ReturnType<typeof setInterval>[]} */
    this.timers = [];
  }

  /** Connects every client, in batches, and waits until all are connected. */
  async connect() {
    for (let index = 0; index < this.options.size; index += 1) {
      this.members.push(new Member(index, this.options));
      if ((index + 1) % CONNECT_BATCH === 0) await this.allConnected(30_000);
    }
    await this.allConnected(30_000);
  }

  /** Resolves once every client is connected; rejects after `timeoutMs`. */
  async allConnected(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const waiting = this.members.filter((m) => !m.current);
      if (waiting.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`${waiting.length} clients not connected within ${timeoutMs} ms (e.g. client ${waiting[0].index}, state ${waiting[0].client.state})`);
      }
      await sleep(20);
    }
  }

  /** Every client sends an action every `actionIntervalMs`, at its own phase, while connected. */
  startActions() {
    const every = this.options.actionIntervalMs;
    for (const member of this.members) {
      const phase = setTimeout(() => {
        this.timers.push(setInterval(() => member.current && member.act(), every));
      }, Math.random() * every);
      this.timers.push(phase);
    }
  }

  close() {
    for (const timer of this.timers) clearInterval(timer);
    for (const member of this.members) member.client.close();
  }

  /** The members a message to `target` ({user} or {group}) reaches. */
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
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
