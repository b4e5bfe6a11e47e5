/**
 * One client: Herald's own JS client (clients/js/herald.js) in Node, over
 * the `ws` package, with its default reconnect settings, connected through
 * HAProxy like a browser; or, on the Pusher path, pusher-js signed in as
 * its user and subscribed to its group's channel. It records its sessions,
 * what it received, its reconnect attempts and how its actions went; the
 * analysis reads those records. Members live in the fleet's worker threads
 * (fleet-worker.mjs).
 */

import PusherServer from 'pusher';
import Pusher from 'pusher-js';
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

/** What every member records, whatever protocol it speaks. */
class Records {
  constructor(index, groups) {
    Object.assign(this, identity(index, groups));
    /** @type {Array<{ conn: string, start: number, end?: number, code?: number, reason?: string }>} */
    this.sessions = [];
    /** @type {Map<string, number[]>} Message id → when it was received (more than once: a duplicate). */
    this.received = new Map();
    /** @type {Array<{ at: number, attempt: number, delayMs: number }>} */
    this.attempts = [];
    /** @type {Array<{ at: number, done?: number, ok?: boolean, code?: number, local?: boolean, message?: string }>} */
    this.actions = [];
    /** @type {Array<{ at: number, recovered: boolean }>} `$recovered` events (recovery on). */
    this.recoveries = [];
  }

  /** The session open now, if any. */
  get current() {
    const last = this.sessions[this.sessions.length - 1];
    return last && last.end === undefined ? last : null;
  }

  /** Notes a `tick` received. */
  tick({ id }) {
    const times = this.received.get(id);
    if (times) times.push(Date.now());
    else this.received.set(id, [Date.now()]);
  }

  /** What the analysis reads, as plain data (it crosses threads). */
  record() {
    const { index, user, group, sessions, received, attempts, actions, recoveries } = this;
    return { index, user, group, sessions, received, attempts, actions, recoveries };
  }
}

export class Member extends Records {
  /**
   * @param {number} index
   * @param {{ wsUrl: string, secret: string, groups: number }} options
   */
  constructor(index, { wsUrl, secret, groups }) {
    super(index, groups);
    const token = mintToken(secret, this.user, { groups: [this.group] });
    this.client = new Herald(wsUrl, { token }, { WebSocket, requestTimeoutMs: 5000 });
    this.client.on('$connected', ({ conn }) => this.sessions.push({ conn, start: Date.now() }));
    this.client.on('$disconnected', ({ code, reason }) => {
      const session = this.current;
      if (session) Object.assign(session, { end: Date.now(), code, reason });
    });
    this.client.on('$recovered', ({ recovered }) => this.recoveries.push({ at: Date.now(), recovered }));
    this.client.on('$reconnecting', ({ attempt, delayMs }) => this.attempts.push({ at: Date.now(), attempt, delayMs }));
    this.client.on('tick', (details) => this.tick(details));
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

  close() {
    this.client.close();
  }
}

/**
 * pusher-js, with its default reconnect settings: signed in as its user
 * (deliveries to the user arrive on its user channel) and subscribed to the
 * public channel of its group. Pusher has no request/reply, so it sends no
 * actions. A session's close code is the one of the `pusher:error` the edge
 * sends before it closes (pusher-js does not pass the close frame's on).
 */
export class PusherMember extends Records {
  /**
   * @param {number} index
   * @param {{ wsUrl: string, groups: number, pusherApp: { id: string, key: string, secret: string } }} options
   */
  constructor(index, { wsUrl, groups, pusherApp }) {
    super(index, groups);
    const url = new URL(wsUrl);
    // Pusher's server SDK signs the sign-in, as the app's auth endpoint would.
    const backend = new PusherServer({ appId: pusherApp.id, key: pusherApp.key, secret: pusherApp.secret });
    this.client = new Pusher(pusherApp.key, {
      cluster: 'herald',
      wsHost: url.hostname,
      wsPort: Number(url.port),
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      userAuthentication: {
        customHandler: ({ socketId }, callback) => callback(null, backend.authenticateUser(socketId, { id: this.user })),
      },
    });
    /** The code of the last `pusher:error`, which precedes a close by the edge. */
    let lastError;
    /** Connection attempts since the last session. */
    let attempt = 0;
    // The close's own error comes again wrapped as a WebSocketError.
    this.client.connection.bind('error', (error) => (lastError = (error?.data ?? error?.error?.data)?.code ?? lastError));
    this.client.connection.bind('state_change', ({ previous, current }) => {
      if (previous === 'connected') {
        const session = this.current;
        if (session) Object.assign(session, { end: Date.now(), code: lastError ?? 1006 });
        lastError = undefined;
      }
      if (current === 'connecting') {
        attempt += 1;
        if (this.sessions.length) this.attempts.push({ at: Date.now(), attempt, delayMs: 0 });
      }
      if (current === 'connected') {
        attempt = 0;
        this.sessions.push({ conn: this.client.connection.socket_id, start: Date.now() });
      }
    });
    this.client.signin();
    this.client.user.bind('tick', (details) => this.tick(details));
    this.client.subscribe(this.group).bind('tick', (details) => this.tick(details));
  }

  close() {
    this.client.disconnect();
  }
}
