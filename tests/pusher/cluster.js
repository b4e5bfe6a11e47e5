/**
 * A Herald cluster for Pusher clients: a real nats-server and `herald edge`
 * processes (the repository's debug build, or `HERALD_BIN`) serving one
 * Pusher app, each on a free port; and the real clients: pusher-js, Laravel
 * Echo on it, and Pusher's own server SDK (npm `pusher`) signing channel
 * subscriptions and sign-ins as a Laravel app's auth endpoints would.
 * `HERALD_TEST_LOGS=1` copies the servers' output to standard error.
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Echo from 'laravel-echo';
import { connect as natsConnect, headers as natsHeaders } from 'nats';
import PusherServer from 'pusher';
import Pusher from 'pusher-js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const HERALD = process.env.HERALD_BIN ?? join(REPO, 'target/debug/herald');
const START_TIMEOUT_MS = 20_000;

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

/** Every process still running, killed if the test process exits early. */
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** A TCP port free right now on 127.0.0.1. */
export async function freePort() {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts `command` and waits for a line of its output matching `ready`. */
async function startProcess(command, args, env, ready) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let output = '';
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start:\n${output}`)), START_TIMEOUT_MS);
    const read = (chunk) => {
      output += chunk;
      if (process.env.HERALD_TEST_LOGS) process.stderr.write(chunk);
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => reject(new Error(`${command} exited with ${code}:\n${output}`)));
  });
  await started;
  return child;
}

/** Waits until `check()` is true, polling, or fails saying `what`. */
export async function eventually(check, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export class Cluster {
  /** @type {import('node:child_process').ChildProcess} */
  nats;
  /** @type {{port: number, process: import('node:child_process').ChildProcess}[]} */
  edges = [];
  /** NATS connections of backends, closed at the stop. */
  buses = [];

  /**
   * nats-server and `edges` edges serving the test app; `env` adds edge
   * settings.
   */
  static async start(edges = 2, env = {}) {
    const cluster = new Cluster();
    const natsPort = await freePort();
    cluster.natsUrl = `nats://127.0.0.1:${natsPort}`;
    cluster.nats = await startProcess('nats-server', ['-a', '127.0.0.1', '-p', String(natsPort)], {}, /Server is ready/);
    for (let i = 0; i < edges; i++) await cluster.startEdge(env);
    return cluster;
  }

  async startEdge(env = {}) {
    const port = await freePort();
    const edgeEnv = {
      HERALD_NATS_URL: this.natsUrl,
      HERALD_LISTEN: `127.0.0.1:${port}`,
      HERALD_PUSHER_APP_ID: APP.id,
      HERALD_PUSHER_KEY: APP.key,
      HERALD_PUSHER_SECRET: APP.secret,
      HERALD_LOG: 'info',
      NO_COLOR: '1',
      ...env,
    };
    const child = await startProcess(HERALD, ['edge'], edgeEnv, /edge serving/);
    const edge = { port, process: child };
    this.edges.push(edge);
    // Serving, and subscribed: ready.
    await eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 'the edge to be ready');
    return edge;
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
    const all = [...this.edges.map((edge) => edge.process), this.nats];
    for (const child of all) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
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

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
