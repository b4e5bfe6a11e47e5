/**
 * A Herald cluster for Pusher clients: a real nats-server and `herald edge`
 * processes (the repository's debug build, or `HERALD_BIN`) serving one
 * Pusher app, each on a free port; and the real clients: pusher-js, Laravel
 * Echo on it, and Pusher's own server SDK (npm `pusher`) signing channel
 * subscriptions and sign-ins as a Laravel app's auth endpoints would.
 * `HERALD_TEST_LOGS=1` copies the servers' output to standard error.
 */

import Echo from 'laravel-echo';
import { connect as natsConnect, headers as natsHeaders } from 'nats';
import PusherServer from 'pusher';
import Pusher from 'pusher-js';

import { HERALD, eventually, freePort, sleep, startNats, startProcess, stopProcess } from '../harness-js/processes.js';

export { eventually, freePort, sleep };

export const APP = { id: '42', key: 'test-key', secret: 'test-secret' };

/** Pusher's server SDK for the test app, as the Laravel app uses it. */
export const backend = new PusherServer({
  appId: APP.id,
  key: APP.key,
  secret: APP.secret,
  host: '127.0.0.1',
  // Encrypted channels: the SDK derives each channel's key from it.
  encryptionMasterKeyBase64: Buffer.alloc(32, 7).toString('base64'),
});

export class Cluster {
  /** @type {import('node:child_process').ChildProcess} */
  nats;
  /** @type {{port: number, process: import('node:child_process').ChildProcess}[]} */
  edges = [];
  /** NATS connections of backends, closed at the stop. */
  buses = [];
  /** `herald router` processes. */
  routers = [];

  /**
   * nats-server and `edges` edges serving the test app; `env` adds edge
   * settings.
   */
  static async start(edges = 2, env = {}) {
    const cluster = new Cluster();
    const nats = await startNats();
    cluster.natsUrl = nats.url;
    cluster.nats = nats.process;
    for (let i = 0; i < edges; i++) await cluster.startEdge(env);
    return cluster;
  }

  /** The settings of a Herald process of this cluster listening on `port`, serving the test app. */
  heraldEnv(port, env) {
    return {
      HERALD_NATS_URL: this.natsUrl,
      HERALD_LISTEN: `127.0.0.1:${port}`,
      HERALD_PUSHER_APP_ID: APP.id,
      HERALD_PUSHER_KEY: APP.key,
      HERALD_PUSHER_SECRET: APP.secret,
      HERALD_LOG: 'info',
      NO_COLOR: '1',
      ...env,
    };
  }

  async startEdge(env = {}) {
    const port = await freePort();
    const child = await startProcess(HERALD, ['edge'], this.heraldEnv(port, env), /edge serving/);
    const edge = { port, process: child };
    this.edges.push(edge);
    // Serving, and subscribed: ready.
    await eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 'the edge to be ready');
    return edge;
  }

  /**
   * A `herald router` serving the test app's Pusher HTTP API (`env` adds
   * settings, e.g. its webhook URL), and Pusher's server SDK pointed at it.
   */
  async startRouter(env = {}) {
    const port = await freePort();
    const routerEnv = this.heraldEnv(port, { HERALD_API_KEY: 'test-api-key', ...env });
    const child = await startProcess(HERALD, ['router'], routerEnv, /router serving/);
    this.routers.push(child);
    const api = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port, useTLS: false });
    return { port, process: child, api };
  }

  /** A NATS connection, as a backend publishing to Herald has. */
  async backendBus() {
    const nc = await natsConnect({ servers: this.natsUrl });
    this.buses.push(nc);
    return {
      /** Publishes a Herald frame to `subject`, optionally skipping a connection. */
      publish: (subject, frame, excludeConn) => {
        const h = natsHeaders();
        if (excludeConn) h.set('Herald-Exclude-Conn', excludeConn);
        nc.publish(subject, JSON.stringify(frame), { headers: h });
        return nc.flush();
      },
    };
  }

  /** Stops every process. */
  async stop() {
    for (const nc of this.buses) await nc.close();
    const all = [...this.routers, ...this.edges.map((edge) => edge.process), this.nats];
    for (const child of all) await stopProcess(child);
  }
}

/**
 * A pusher-js client of the test app on edge `port`. Private and presence
 * channels are signed by Pusher's server SDK for `member` (presence
 * channel_data), sign-in for `user`.
 */
export function pusherClient(port, { member, user, ...options } = {}) {
  return new Pusher(APP.key, {
    cluster: 'herald',
    wsHost: '127.0.0.1',
    wsPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          const presence = channelName.startsWith('presence-') ? member : undefined;
          callback(null, backend.authorizeChannel(socketId, channelName, presence));
        } catch (error) {
          callback(error, null);
        }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) => callback(null, backend.authenticateUser(socketId, user)),
    },
    ...options,
  });
}

/** Laravel Echo on pusher-js, configured as a Laravel app's bootstrap.js does. */
export function echoClient(port, options = {}) {
  const client = pusherClient(port, options);
  return { echo: new Echo({ broadcaster: 'pusher', key: APP.key, client }), client };
}

/** Resolves with the connection's socket id once it is connected. */
export function connected(client) {
  return new Promise((resolve, reject) => {
    if (client.connection.state === 'connected') return resolve(client.connection.socket_id);
    client.connection.bind('connected', () => resolve(client.connection.socket_id));
    client.connection.bind('failed', () => reject(new Error('connection failed')));
  });
}

/** Resolves once `channel` is subscribed, rejects on a subscription error. */
export function subscribed(channel) {
  return new Promise((resolve, reject) => {
    if (channel.subscribed) return resolve(channel);
    channel.bind('pusher:subscription_succeeded', (data) => resolve(data));
    channel.bind('pusher:subscription_error', (error) => reject(Object.assign(new Error('subscription error'), error)));
  });
}

/** The next `event` on `emitter` (a channel, or the connection). */
export function next(emitter, event) {
  return new Promise((resolve) => {
    const handler = (data, metadata) => {
      emitter.unbind(event, handler);
      resolve({ data, metadata });
    };
    emitter.bind(event, handler);
  });
}

/** Collects every `event` on `emitter` into an array. */
export function collect(emitter, event) {
  const seen = [];
  emitter.bind(event, (data, metadata) => seen.push({ data, metadata }));
  return seen;
}

