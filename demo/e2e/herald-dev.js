/**
 * Runs `herald dev` as a child process on a free port; stopped, it can be
 * started again on the same port. The binary is `HERALD_BIN`, by default the repository's
 * debug build (`cargo build -p herald`). `HERALD_TEST_LOGS=1` copies its
 * output to standard error.
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';

import { HERALD, REPO, freePort, track } from '../../tests/harness-js/processes.js';

export { REPO, freePort };

const READY = /dev server listening on http:\/\//;
const READY_TIMEOUT_MS = 20_000;

export class HeraldDev {
  /** @type {import('node:child_process').ChildProcess | null} */
  #process = null;
  output = '';

  /** Starts `herald dev` on a free port; `env` adds settings (e.g. a Pusher app). */
  static async start(env = {}) {
    const dev = new HeraldDev(await freePort(), env);
    await dev.start();
    return dev;
  }

  /**
   * @param {number} port
   * @param {Record<string, string>} env
   */
  constructor(port, env = {}) {
    this.port = port;
    this.env = env;
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Starts the process and waits until it serves. */
  async start() {
    const child = spawn(HERALD, ['dev'], {
      env: { ...process.env, HERALD_LISTEN: `127.0.0.1:${this.port}`, HERALD_LOG: 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#process = track(child);
    this.output = '';
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (text) => {
        this.output += text;
        if (process.env.HERALD_TEST_LOGS === '1') process.stderr.write(text);
      });
    }
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!READY.test(this.output)) {
      if (child.exitCode !== null) throw new Error(`herald dev exited with ${child.exitCode}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`herald dev did not start in ${READY_TIMEOUT_MS} ms:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Stops the process (SIGTERM: it drains, closing clients with 1012) and waits for it. */
  async stop() {
    const child = this.#process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}
