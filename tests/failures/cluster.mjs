/**
 * The local cluster the suite runs on: scripts/cluster/cluster.sh, driven
 * asynchronously (the clients keep running while a node is stopped), and the
 * cluster's HTTP API through HAProxy.
 */

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execute = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/cluster/cluster.sh', import.meta.url));

export class Cluster {
  /**
   * @param {{ dir: string, net: string, listen: string, profile: string, bare: boolean, settings: Record<string, string> }} options
   *   `settings`: HERALD_* variables for the edges and routers.
   */
  constructor({ dir, net, listen, profile, bare, settings }) {
    this.dir = dir;
    this.profile = profile;
    this.env = {
      ...process.env,
      ...settings,
      HERALD_CLUSTER_DIR: dir,
      HERALD_CLUSTER_NET: net,
      HERALD_CLUSTER_LISTEN: listen,
    };
    if (bare) this.env.HERALD_LB_BARE = '1';
    else delete this.env.HERALD_LB_BARE;
    /** @type {Record<string, string>} cluster.env, once up. */
    this.settings = {};
  }

  async up() {
    await this.#script('up', '--profile', this.profile, '--no-build');
    const text = readFileSync(join(this.dir, 'cluster.env'), 'utf8');
    this.settings = Object.fromEntries(text.trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2)));
  }

  down() {
    return this.#script('down');
  }

  /** Signals `node` and waits for it to exit. */
  stop(node, signal = 'TERM') {
    return this.#script('stop', node, signal);
  }

  /** Signals `node` and returns at once (STOP freezes it, CONT thaws it). */
  signal(node, signal) {
    return this.#script('signal', node, signal);
  }

  start(node) {
    return this.#script('start', node);
  }

  waitReady(node) {
    return this.#script('wait-ready', node);
  }

  /** Until HAProxy's health checks see `node` as `state` (UP or DOWN). */
  waitLb(node, state) {
    return this.#script('wait-lb', node, state);
  }

  /** Starts `node` again and waits until it serves and HAProxy sends it traffic. */
  async restart(node) {
    await this.start(node);
    await this.waitReady(node);
    if (/^(edge|router)-/.test(node)) await this.waitLb(node, 'UP');
  }

  get url() {
    return this.settings.HERALD_CLUSTER_URL;
  }

  get wsUrl() {
    return `${this.url.replace(/^http/, 'ws')}/ws`;
  }

  get secret() {
    return this.settings.HERALD_CLUSTER_JWT_SECRET;
  }

  /** The id an edge gives its connections (`<id>.<n>`), from its log. */
  edgeId(node) {
    const log = readFileSync(join(this.dir, 'logs', `${node}.log`), 'utf8');
    const ids = [...log.matchAll(/edge ([0-9a-f]+) listening on/g)];
    if (ids.length === 0) throw new Error(`${node} has not said its id`);
    return ids[ids.length - 1][1];
  }

  /**
   * Calls the backend API through HAProxy: the JSON answer, or an error
   * whose message says why not.
   */
  async api(method, path, body, timeoutMs = 2000) {
    const response = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.settings.HERALD_CLUSTER_API_KEY}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.trim()}`);
    return JSON.parse(text);
  }

  async #script(...args) {
    try {
      await execute(SCRIPT, args, { env: this.env, maxBuffer: 16 << 20 });
    } catch (error) {
      throw new Error(`cluster.sh ${args.join(' ')} failed: ${error.stderr || error.message}`);
    }
  }
}
