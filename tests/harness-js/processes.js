/**
 * What the Node test directories (tests/pusher, tests/socketio, demo/e2e) share to run
 * real Herald processes: free ports, processes started and waited for
 * (killed if the test process exits early), polling. No dependencies, so
 * any test directory may import it. `HERALD_TEST_LOGS=1` copies the
 * processes' output to standard error.
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** The `herald` binary under test: the repository's debug build, or `HERALD_BIN`. */
export const HERALD = process.env.HERALD_BIN ?? join(REPO, 'target/debug/herald');
const START_TIMEOUT_MS = 20_000;

/** Every process still running, killed if the test process exits early. */
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Kills `child` if the test process exits before it does. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

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
export async function startProcess(command, args, env, ready) {
  const child = track(spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
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

/** Stops `child` with SIGTERM, if it still runs, and waits for it. */
export async function stopProcess(child) {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

/** Starts nats-server on a free port; its URL and process. */
export async function startNats() {
  const port = await freePort();
  const process = await startProcess('nats-server', ['-a', '127.0.0.1', '-p', String(port)], {}, /Server is ready/);
  return { url: `nats://127.0.0.1:${port}`, process };
}

/** Waits until `check()` is true, polling, or fails saying `what`. */
export async function eventually(check, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
