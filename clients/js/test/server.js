/**
 * Test helper: runs a real Herald as child processes, on free ports, and
 * mints tokens for it.
 *
 * Two setups, chosen by `HERALD_TEST_SETUP`:
 * - `dev`: `herald dev` (edge, router, echo and chat handlers on one port);
 * - `split`: `nats-server`, `herald edge`, `herald router` and
 *   `herald-examples echo chat`, each its own process.
 * Without the variable, `dev` when the binary has it, else `split`.
 *
 * Binaries: `HERALD_BIN` and `HERALD_EXAMPLES_BIN`, by default the debug
 * builds in the repository's `target/` (`cargo build -p herald -p herald-examples`).
 * `HERALD_TEST_LOGS=1` copies the servers' output to standard error.
 */

import { spawn, spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import WebSocket from 'ws';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const HERALD = process.env.HERALD_BIN ?? join(REPO, 'target/debug/herald');
const EXAMPLES = process.env.HERALD_EXAMPLES_BIN ?? join(REPO, 'target/debug/herald-examples');
const SHOW_LOGS = process.env.HERALD_TEST_LOGS === '1';
const READY_TIMEOUT_MS = 20_000;

/** Every child still running, killed if the test process exits early. */
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** @returns {'dev' | 'split'} */
export function setup() {
  const chosen = process.env.HERALD_TEST_SETUP;
  if (chosen === 'dev' || chosen === 'split') return chosen;
  if (chosen) throw new Error(`HERALD_TEST_SETUP is "dev" or "split", not ${JSON.stringify(chosen)}`);
  return spawnSync(HERALD, ['dev', '--help'], { stdio: 'ignore' }).status === 0 ? 'dev' : 'split';
}

/** A TCP port free right now on 127.0.0.1. */
export async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** base64url of a string or buffer, unpadded. */
function base64url(data) {
  return Buffer.from(data).toString('base64url');
}

/**
 * An HS256 JWT.
 *
 * @param {string} secret
 * @param {object} claims
 */
export function signToken(secret, claims) {
  const head = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** One child process with its output kept for diagnostics. */
class Child {
  /**
   * @param {string} name
   * @param {string} command
   * @param {string[]} args
   * @param {Record<string, string>} env
   */
  constructor(name, command, args, env) {
    this.name = name;
    this.output = '';
    this.process = spawn(command, args, { env: { ...process.env, HERALD_LOG: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.process);
    this.exited = once(this.process, 'exit').then(([code, signal]) => {
      children.delete(this.process);
      return { code, signal };
    });
    for (const stream of [this.process.stdout, this.process.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (text) => {
        this.output += text;
        if (SHOW_LOGS) process.stderr.write(text.replace(/^/gm, `[${name}] `));
      });
    }
  }

  /** Waits until the output matches `pattern`; fails if the process exits first. */
  async waitFor(pattern, timeoutMs = READY_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.output)) {
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(`${this.name} exited before printing ${pattern}:\n${this.output}`);
      }
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${pattern} in ${timeoutMs} ms:\n${this.output}`);
      await sleep(25);
    }
  }

  signal(name) {
    this.process.kill(name);
  }

  /** Stops the process with `signal` and waits for it to exit. */
  async stop(signal = 'SIGTERM') {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return this.exited;
    this.process.kill(signal);
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 10_000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A running Herald. `front` is the process that holds the WebSocket sessions
 * (`herald dev`, or the edge): the one restarted, paused or killed.
 */
class HeraldServer {
  /** @param {{ setup: 'dev' | 'split', env: Record<string, string>, jetstream?: boolean }} options */
  constructor({ setup, env, jetstream = false }) {
    this.setup = setup;
    this.env = env;
    /** NATS runs with JetStream (split setup), for missed-message recovery. */
    this.jetstream = jetstream;
    this.secret = `test-secret-${randomBytes(8).toString('hex')}`;
    this.apiKey = `test-key-${randomBytes(8).toString('hex')}`;
    /** @type {Child[]} Processes behind the front, started once (split setup). */
    this.backing = [];
    /** @type {Child | null} */
    this.front = null;
    /** Set by `stop`: nothing starts again afterwards. */
    this.stopped = false;
  }

  /** The WebSocket endpoint. */
  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Where the backend HTTP API (`/api/*`) is served. */
  get apiUrl() {
    return `http://127.0.0.1:${this.setup === 'dev' ? this.port : this.routerPort}`;
  }

  async start() {
    this.port = await freePort();
    if (this.setup === 'split') await this.#startBacking();
    await this.startFront();
  }

  async #startBacking() {
    const natsPort = await freePort();
    this.routerPort = await freePort();
    this.natsUrl = `nats://127.0.0.1:${natsPort}`;
    this.dir = mkdtempSync(join(tmpdir(), 'herald-js-test-'));
    const routes = join(this.dir, 'routes.toml');
    writeFileSync(
      routes,
      '[[routes]]\naction = "echo"\nnats = "examples.echo"\n\n[[routes]]\naction = "chat/*"\nnats = "examples.chat"\n',
    );
    const store = this.jetstream ? ['-js', '-sd', join(this.dir, 'jetstream')] : [];
    const nats = new Child('nats', 'nats-server', ['-a', '127.0.0.1', '-p', String(natsPort), ...store], {});
    this.backing.push(nats);
    await nats.waitFor(/Server is ready/);
    const router = new Child('router', HERALD, ['router'], {
      HERALD_LISTEN: `127.0.0.1:${this.routerPort}`,
      HERALD_API_KEY: this.apiKey,
      HERALD_ROUTES_FILE: routes,
      HERALD_NATS_URL: this.natsUrl,
    });
    const examples = new Child('examples', EXAMPLES, ['echo', 'chat'], { HERALD_NATS_URL: this.natsUrl });
    this.backing.push(router, examples);
  }

  /** Starts the front process on `this.port` and waits until echo answers through it. */
  async startFront() {
    if (this.stopped) throw new Error('Herald was stopped');
    const env = { HERALD_LISTEN: `127.0.0.1:${this.port}`, HERALD_JWT_SECRET: this.secret, ...this.env };
    if (this.setup === 'dev') {
      this.front = new Child('dev', HERALD, ['dev'], { HERALD_API_KEY: this.apiKey, ...env });
      await this.front.waitFor(/dev server listening on http:\/\//);
    } else {
      this.front = new Child('edge', HERALD, ['edge'], { HERALD_NATS_URL: this.natsUrl, ...env });
    }
    await this.#untilEchoAnswers();
  }

  /** Polls with a raw WebSocket until an echo round trip works end to end. */
  async #untilEchoAnswers() {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.front.process.exitCode !== null) throw new Error(`${this.front.name} exited:\n${this.front.output}`);
      try {
        await echoOnce(`${this.wsUrl}?token=${this.token('ready-check')}`);
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          const logs = [this.front, ...this.backing].map((c) => `--- ${c.name}\n${c.output}`).join('\n');
          throw new Error(`Herald not ready in ${READY_TIMEOUT_MS} ms: ${error.message}\n${logs}`);
        }
        await sleep(100);
      }
    }
  }

  /**
   * A token for `user`, valid `ttlSeconds` (may be negative: already
   * expired), allowed to `$join` any group.
   *
   * @param {string} user
   * @param {{ ttlSeconds?: number, claims?: object }} [options]
   */
  token(user, { ttlSeconds = 3600, claims = {} } = {}) {
    const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
    return signToken(this.secret, { sub: user, exp, join: ['*'], ...claims });
  }

  /** `POST /api/publish` with the API key. */
  async publish(body) {
    const response = await fetch(`${this.apiUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`publish: ${response.status} ${await response.text()}`);
  }

  /** Stops the front process (SIGTERM drains with 1012; SIGKILL drops connections). */
  async stopFront(signal = 'SIGTERM') {
    await this.front.stop(signal);
  }

  /** Stops the front process and starts it again on the same port. */
  async restart(signal = 'SIGTERM') {
    await this.stopFront(signal);
    await this.startFront();
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the front process. */
  pause() {
    this.front.signal('SIGSTOP');
  }

  resume() {
    this.front.signal('SIGCONT');
  }

  async stop() {
    this.stopped = true;
    if (this.front) {
      this.front.signal('SIGCONT');
      await this.front.stop();
    }
    for (const child of this.backing.reverse()) await child.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One echo request over a raw WebSocket; rejects on anything unexpected. */
function echoOnce(url) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const fail = (error) => {
      clearTimeout(timer);
      socket.terminate();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error('no echo within 2 s')), 2000);
    socket.on('error', fail);
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.action === '$connected') socket.send(JSON.stringify({ action: 'echo', details: 'ready?', id: 1 }));
      else if (frame.action === '$recovered') return; // with history on (recovery)
      else if (frame.action === 'echo' && frame.id === 1) {
        clearTimeout(timer);
        socket.close();
        resolve();
      } else fail(new Error(`unexpected frame ${data}`));
    });
  });
}

/**
 * Starts a Herald for one test file.
 *
 * @param {{ env?: Record<string, string>, jetstream?: boolean }} [options] Extra `HERALD_*`
 *   settings for the front process (`herald dev`, or the edge); `jetstream` runs the split setup
 *   with JetStream on (recovery needs it; `herald dev` has none).
 */
export async function startHerald({ env = {}, jetstream = false } = {}) {
  const herald = new HeraldServer({ setup: jetstream ? 'split' : setup(), env, jetstream });
  try {
    await herald.start();
  } catch (error) {
    await herald.stop();
    throw error;
  }
  return herald;
}
