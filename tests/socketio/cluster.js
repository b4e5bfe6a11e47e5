/**
 * A Herald cluster for socket.io-client: a real nats-server, `herald edge`
 * processes and a `herald router` (the repository's debug build, or
 * `HERALD_BIN`), each on a free port; the application's handlers, one on
 * NATS (request/reply in a queue group) and one on HTTP (signed requests,
 * as a PHP script behind the router gets them, and `$connect` from the
 * session cookie); and a TCP load balancer in front of the edges, so that a
 * client sent away by a draining edge reconnects to another by itself.
 */

import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { connect as natsConnect, headers as natsHeaders, JSONCodec } from 'nats';
import { io } from 'socket.io-client';

import { HERALD, eventually, freePort, startNats, startProcess, stopProcess } from '../harness-js/processes.js';

export const JWT_SECRET = 'socketio-tests-jwt-secret';
export const API_KEY = 'socketio-tests-api-key';
const WEBHOOK_SECRET = 'socketio-tests-webhook-secret';
/** The NATS subject the `nats/*` route points at. */
const NATS_HANDLER = 'tests.socketio';
/** The session cookie the HTTP handler's `$connect` reads: `sid=user:<name>`. */
export const SESSION_COOKIE = 'sid';

const json = JSONCodec();

/** An HS256 JWT signed with the edges' secret. */
export function token(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`;
}

/**
 * What the application's handlers answer, by action (the same whichever
 * handler, NATS or HTTP, gets it): the handler response for a request.
 */
function answer(request, heard) {
  const [, name] = request.action.split('/');
  switch (name) {
    case 'echo':
      return { details: request.details };
    case 'whoami':
      return { details: { conn: request.conn, user: request.user, groups: request.groups } };
    case 'record':
      heard.push(request);
      return { details: { recorded: true } };
    case 'join': {
      const room = request.details.room;
      return {
        details: { joined: room },
        effects: [{ join: room }, { publish: { to: { groups: [room] }, action: 'room/joined', details: { conn: request.conn } } }],
      };
    }
    case 'fail':
      return { error: { code: 422, message: 'the handler says no' } };
    default:
      return { error: { code: 404, message: `no such test action ${request.action}` } };
  }
}

export class Cluster {
  /** @type {{port: number, process: import('node:child_process').ChildProcess}[]} */
  edges = [];
  /** Handler requests that asked to be recorded (`*\/record`), in order. */
  heard = [];
  /** Servers and connections closed at the stop. */
  #closers = [];

  static async start(edges = 2) {
    const cluster = new Cluster();
    const nats = await startNats();
    cluster.natsUrl = nats.url;
    cluster.nats = nats.process;
    cluster.bus = await natsConnect({ servers: nats.url });
    cluster.#closers.push(() => cluster.bus.close());
    await cluster.#serveNatsHandler();
    const httpHandler = await cluster.#serveHttpHandler();
    await cluster.#startRouter(httpHandler);
    for (let i = 0; i < edges; i++) await cluster.startEdge();
    await cluster.#startBalancer();
    return cluster;
  }

  async #serveNatsHandler() {
    const subscription = this.bus.subscribe(NATS_HANDLER, { queue: 'handlers' });
    (async () => {
      for await (const message of subscription) message.respond(json.encode(answer(json.decode(message.data), this.heard)));
    })();
    await this.bus.flush();
  }

  /** The HTTP handler: checks Herald's signature, answers `$connect` from the cookie. */
  async #serveHttpHandler() {
    const server = createHttpServer(async (request, response) => {
      let body = '';
      for await (const chunk of request) body += chunk;
      const timestamp = request.headers['herald-timestamp'] ?? '';
      const expected = `v1=${createHmac('sha256', WEBHOOK_SECRET).update(`${timestamp}.${body}`).digest('hex')}`;
      const given = Buffer.from(request.headers['herald-signature'] ?? '');
      if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected))) {
        response.writeHead(401).end('bad signature');
        return;
      }
      const handlerRequest = JSON.parse(body);
      let reply;
      if (handlerRequest.action === '$connect') {
        const session = handlerRequest.cookies?.[SESSION_COOKIE] ?? '';
        reply = session.startsWith('user:')
          ? { user: session.slice('user:'.length), groups: ['cookie-people'] }
          : { error: { code: 401, message: 'no session: log in first' } };
      } else {
        reply = answer(handlerRequest, this.heard);
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.#closers.push(() => server.close());
    return `http://127.0.0.1:${server.address().port}/herald`;
  }

  async #startRouter(httpHandler) {
    const routes = join(tmpdir(), `herald-socketio-routes-${process.pid}.toml`);
    writeFileSync(
      routes,
      `[[routes]]\naction = "$connect"\nhttp = "${httpHandler}"\n\n` +
        `[[routes]]\naction = "http/*"\nhttp = "${httpHandler}"\n\n` +
        `[[routes]]\naction = "nats/*"\nnats = "${NATS_HANDLER}"\n`,
    );
    const port = await freePort();
    const env = {
      HERALD_NATS_URL: this.natsUrl,
      HERALD_LISTEN: `127.0.0.1:${port}`,
      HERALD_ROUTES_FILE: routes,
      HERALD_API_KEY: API_KEY,
      HERALD_WEBHOOK_SECRET: WEBHOOK_SECRET,
      HERALD_LOG: 'info',
      NO_COLOR: '1',
    };
    this.router = { port, process: await startProcess(HERALD, ['router'], env, /router serving/) };
  }

  async startEdge(env = {}) {
    const port = await freePort();
    const edgeEnv = {
      HERALD_NATS_URL: this.natsUrl,
      HERALD_LISTEN: `127.0.0.1:${port}`,
      HERALD_JWT_SECRET: JWT_SECRET,
      // Small, so that an oversized packet is cheap to send.
      HERALD_MAX_MESSAGE_BYTES: '8192',
      HERALD_LOG: 'info',
      NO_COLOR: '1',
      ...env,
    };
    const child = await startProcess(HERALD, ['edge'], edgeEnv, /edge serving/);
    const edge = { port, process: child, url: `http://127.0.0.1:${port}` };
    this.edges.push(edge);
    await eventually(async () => (await fetch(`${edge.url}/readyz`)).ok, 'the edge to be ready');
    return edge;
  }

  /**
   * A TCP load balancer: each connection goes to the first edge that takes
   * it, from `balanced` (an array the tests may change), as a load balancer
   * skipping a dead pod does.
   */
  async #startBalancer() {
    this.balanced = [];
    const server = createTcpServer((client) => {
      const tryEdge = (index) => {
        const edge = this.balanced[index];
        if (!edge) return client.destroy();
        const upstream = tcpConnect(edge.port, '127.0.0.1');
        upstream.once('error', () => tryEdge(index + 1));
        upstream.once('connect', () => {
          upstream.removeAllListeners('error');
          upstream.on('error', () => client.destroy());
          client.on('error', () => upstream.destroy());
          client.pipe(upstream).pipe(client);
        });
      };
      tryEdge(0);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.#closers.push(() => server.close());
    this.balancer = `http://127.0.0.1:${server.address().port}`;
  }

  /** Publishes a Herald frame to `subject` on NATS, as a backend does. */
  async publish(subject, frame, excludeConn) {
    const h = natsHeaders();
    if (excludeConn) h.set('Herald-Exclude-Conn', excludeConn);
    this.bus.publish(subject, JSON.stringify(frame), { headers: h });
    await this.bus.flush();
  }

  /** Calls the router's backend API. */
  async api(path, body) {
    const response = await fetch(`http://127.0.0.1:${this.router.port}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  }

  async stop() {
    for (const close of this.#closers) await close();
    for (const child of [...this.edges.map((edge) => edge.process), this.router.process, this.nats]) {
      await stopProcess(child);
    }
  }
}

/** A socket.io-client socket on `url`, as a front end moved to Herald opens it. */
export function socket(url, options = {}) {
  return io(url, { transports: ['websocket'], reconnectionDelay: 50, reconnectionDelayMax: 200, ...options });
}

/** Resolves once `socket` is connected; rejects with its `connect_error`. */
export function connected(socket) {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve(socket.id);
    socket.once('connect', () => resolve(socket.id));
    socket.once('connect_error', reject);
  });
}

/** The next `event` on `socket`, with its arguments. */
export function next(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args.length > 1 ? args : args[0])));
}

/** Collects every `event` on `socket` into an array. */
export function collect(socket, event) {
  const seen = [];
  socket.on(event, (...args) => seen.push(args.length > 1 ? args : args[0]));
  return seen;
}
