/**
 * Test helpers on the client side: a Herald client over the `ws` package,
 * and ways to wait for and record its events.
 */

import WebSocket from 'ws';
import { Herald } from '../herald.js';

/** Fast reconnects, so tests do not wait for production back-off. */
const TEST_BACKOFF = { baseMs: 100, capMs: 1000 };

/**
 * A WebSocket class that counts the sockets made with it, to check how
 * often a client (re)connects.
 */
export function countingWebSocket() {
  const counter = class extends WebSocket {
    static opened = 0;

    constructor(...args) {
      super(...args);
      counter.opened += 1;
    }
  };
  return counter;
}

/**
 * A client of `server`, closed by the caller.
 *
 * @param {{ wsUrl: string }} server
 * @param {object} [auth]
 * @param {object} [options]
 */
export function connect(server, auth = {}, options = {}) {
  return new Herald(server.wsUrl, auth, { WebSocket, backoff: TEST_BACKOFF, ...options });
}

/**
 * The details of the next `action` event (that `where` accepts).
 *
 * @param {Herald} client
 * @param {string} action
 * @param {{ timeout?: number, where?: (details: any) => boolean }} [options]
 */
export function next(client, action, { timeout = 5000, where = () => true } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no ${action} event within ${timeout} ms`));
    }, timeout);
    const stop = client.on(action, (details) => {
      if (!where(details)) return;
      clearTimeout(timer);
      stop();
      resolve(details);
    });
  });
}

/**
 * Records `actions` events, in order, as `{action, details}`.
 *
 * @param {Herald} client
 * @param {string[]} actions
 */
export function record(client, actions) {
  const events = [];
  for (const action of actions) client.on(action, (details) => events.push({ action, details }));
  return events;
}

/** Fails if an `action` event arrives within `ms`. */
export function silence(client, action, ms) {
  return new Promise((resolve, reject) => {
    const stop = client.on(action, (details) => {
      clearTimeout(timer);
      stop();
      reject(new Error(`unexpected ${action} event: ${JSON.stringify(details)}`));
    });
    const timer = setTimeout(() => {
      stop();
      resolve();
    }, ms);
  });
}

/** Resolves once `condition()` holds; fails after `timeout` ms, naming `what`. */
export async function until(condition, what, timeout = 5000) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
