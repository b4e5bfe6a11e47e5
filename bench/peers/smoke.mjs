// Smoke test of the benchmark peers (uws.mjs, ws.mjs, socketio.mjs), speaking
// the wire protocol exactly as herald-bench does: plain WebSocket through the
// `ws` client for uws/ws, raw Engine.IO v4 frames over `ws` for socketio,
// raw Pusher protocol 7 frames over `ws` for the Pusher servers (soketi, and
// sockudo when it is installed), triggered through Pusher's own server SDK
// (npm `pusher`). Starts every server (and a private redis-server) itself,
// checks who got what, stops everything it started, and exits non-zero on
// any failure.
//
//   node smoke.mjs        (or: npm run smoke)
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import Pusher from "pusher";
import WebSocket from "ws";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const HOST = "127.0.0.1";
const CONNECTED = '{"action":"$connected"}';
// Receivers: [groups query or null]. Exactly three are in group "bench".
const RECEIVERS = ["bench", null, "bench,other", "other", "bench", null];
const IN_BENCH = RECEIVERS.map((g) => (g ?? "").split(",").includes("bench"));
// Frames chosen so that any re-encoding would show: odd spacing, unicode.
const FRAME_ALL = { action: "bench/all", details: { seq: 1, text: "héllo ✓" } };
const FRAME_GROUP = { action: "bench/group", details: { seq: 2, nested: { a: [1, 2] } } };
const TEXT_ALL = '{"action":"bench/all", "details":{"seq":1,"text":"héllo ✓"}}';
const TEXT_GROUP = '{ "action":"bench/group","details":{"seq":2,"nested":{"a":[1,2]}} }';

const children = new Set();
const sockets = new Set();

class Failure extends Error {}
const check = (ok, message) => {
  if (!ok) throw new Failure(message);
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Spawns a child that is killed at exit whatever happens. */
function startChild(name, command, args, env = {}, cwd = HERE) {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.label = name;
  child.out = "";
  child.err = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (child.out += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (child.err += d));
  child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.once("error", (error) => (child.err += `spawn failed: ${error.message}\n`));
  children.add(child);
  child.exited.then(() => children.delete(child));
  return child;
}

/** Starts a peer and waits for exactly its `listening on host:port` line. */
async function startPeer(file, port, env = {}) {
  const child = startChild(`${file}:${port}`, process.execPath, [file], { HOST, PORT: String(port), ...env });
  const expected = `listening on ${HOST}:${port}`;
  const listening = new Promise((resolve, reject) => {
    const onData = () => {
      if (child.out.includes("\n")) {
        child.stdout.off("data", onData);
        const first = child.out.split("\n")[0];
        if (first === expected) resolve();
        else reject(new Failure(`${file}: first stdout line ${JSON.stringify(first)}, expected ${JSON.stringify(expected)}`));
      }
    };
    child.stdout.on("data", onData);
    child.exited.then(({ code, signal }) =>
      reject(new Failure(`${file} exited (code ${code}, signal ${signal}) before listening: ${child.err.trim()}`)),
    );
  });
  await withTimeout(listening, 10_000, `${file} to print "${expected}"`);
  return child;
}

/** SIGTERM, then checks the peer closed its listener and exited 0 within `exitMs`. */
async function stopPeer(child, port, exitMs = 5_000) {
  child.kill("SIGTERM");
  const { code, signal } = await withTimeout(child.exited, exitMs, `${child.label} to exit on SIGTERM`);
  check(code === 0, `${child.label} exited with code ${code} (signal ${signal}) on SIGTERM, expected 0; stderr: ${child.err.trim()}`);
  check(!(await portOpen(port)), `${child.label}: port ${port} still open after exit`);
}

async function startRedis() {
  const port = await freePort();
  const child = startChild(`redis-server:${port}`, "redis-server", ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no"]);
  const up = (async () => {
    while (!(await portOpen(port))) {
      if (child.exitCode !== null || child.err.includes("spawn failed")) {
        throw new Failure(`redis-server did not start (is it installed? apt-get install -y redis-server): ${child.err.trim() || child.out.trim()}`);
      }
      await sleep(50);
    }
  })();
  await withTimeout(up, 10_000, "redis-server to accept connections");
  return { child, url: `redis://${HOST}:${port}` };
}

/** Opens a WebSocket and records every frame it gets (text, binary flag). */
function openSocket(url, onMessage = () => {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sockets.add(ws);
    ws.got = [];
    ws.on("message", (data, isBinary) => {
      const text = data.toString("utf8");
      ws.got.push({ text, isBinary });
      onMessage(ws, text, isBinary);
    });
    ws.once("open", () => resolve(ws));
    ws.once("error", (error) => reject(new Failure(`connect ${url}: ${error.message}`)));
    ws.once("unexpected-response", (_, res) => reject(new Failure(`connect ${url}: HTTP ${res.statusCode}`)));
  });
}

/** Waits until `done()` holds, then a little longer so duplicates would show. */
async function settle(done, what) {
  await withTimeout(
    (async () => {
      while (!done()) await sleep(10);
    })(),
    5_000,
    what,
  );
  await sleep(300);
}

function expectStatus(url, status) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once("open", () => {
        ws.terminate();
        reject(new Failure(`${url}: upgraded, expected HTTP ${status}`));
      });
      ws.once("unexpected-response", (_, res) => {
        res.resume();
        if (res.statusCode === status) resolve();
        else reject(new Failure(`${url}: HTTP ${res.statusCode}, expected ${status}`));
      });
      ws.once("error", (error) => reject(new Failure(`${url}: ${error.message}, expected HTTP ${status}`)));
    }),
    5_000,
    `${url} to answer ${status}`,
  );
}

/** uws and ws: plain WebSocket, text frames broadcast verbatim. */
async function plainPeer(file) {
  const port = await freePort();
  const child = await startPeer(file, port);
  const base = `ws://${HOST}:${port}`;

  await expectStatus(`${base}/nope`, 404);
  const receivers = await Promise.all(
    RECEIVERS.map((groups, i) => openSocket(`${base}/ws?token=t${i}${groups === null ? "" : `&groups=${groups}`}&x=1`)),
  );
  await settle(() => receivers.every((r) => r.got.length >= 1), "every receiver to get $connected");
  const toAll = await openSocket(`${base}/publish`); // no `to`: means "all"
  const toGroup = await openSocket(`${base}/publish?to=group.bench`);

  toAll.send(TEXT_ALL);
  toGroup.send(TEXT_GROUP);
  const want = (i) => [CONNECTED, TEXT_ALL, ...(IN_BENCH[i] ? [TEXT_GROUP] : [])];
  await settle(() => receivers.every((r, i) => r.got.length >= want(i).length), "the broadcasts to arrive");

  receivers.forEach((r, i) => {
    check(r.got.every((m) => !m.isBinary), `receiver ${i}: got a binary frame`);
    const texts = r.got.map((m) => m.text);
    check(texts[0] === CONNECTED, `receiver ${i}: first frame ${JSON.stringify(texts[0])}, expected ${CONNECTED}`);
    check(
      isDeepStrictEqual([...texts].sort(), [...want(i)].sort()),
      `receiver ${i} (groups=${RECEIVERS[i]}): got ${JSON.stringify(texts)}, expected ${JSON.stringify(want(i))}`,
    );
  });
  check(toAll.got.length === 0 && toGroup.got.length === 0, `publishers got ${JSON.stringify([...toAll.got, ...toGroup.got])}, expected nothing`);

  for (const ws of [...receivers, toAll, toGroup]) ws.terminate();
  await stopPeer(child, port);
  const inGroup = IN_BENCH.filter(Boolean).length;
  return `${receivers.length} receivers: $connected ×${receivers.length}, all → ${receivers.length}, group.bench → ${inGroup}, publishers got 0`;
}

/** A raw Engine.IO v4 client over `ws`, as the load tool speaks it. */
async function engineIo(base, query) {
  const url = `${base}/socket.io/?EIO=4&transport=websocket&${query}`;
  const ws = await openSocket(url, (socket, text) => {
    if (text === "2") socket.send("3"); // Engine.IO ping → pong
  });
  await settle(() => ws.got.length >= 1, `${url}: Engine.IO open packet`);
  const open = ws.got[0].text;
  check(open.startsWith("0{"), `${url}: first frame ${JSON.stringify(open)}, expected an Engine.IO open packet 0{...}`);
  ws.open = JSON.parse(open.slice(1));
  ws.send("40"); // Socket.IO connect to the default namespace
  await settle(() => ws.got.length >= 2, `${url}: Socket.IO connect ack`);
  const ack = ws.got[1].text;
  check(/^40\{"sid":"[^"]+"\}$/.test(ack), `${url}: second frame ${JSON.stringify(ack)}, expected 40{"sid":"..."}`);
  ws.ack = ack;
  return ws;
}

/** Socket.IO events (42[...]) a socket got, after the open and connect frames. */
function events(ws) {
  return ws.got
    .slice(2)
    .filter((m) => m.text !== "2")
    .map((m) => {
      check(!m.isBinary && m.text.startsWith("42"), `unexpected frame ${JSON.stringify(m.text)}`);
      return JSON.parse(m.text.slice(2));
    });
}

/** socketio: two processes on one redis, receivers split between them. */
async function socketioPeer(file) {
  const redis = await startRedis();
  try {
    const ports = [await freePort(), await freePort()];
    const peers = [];
    for (const port of ports) peers.push(await startPeer(file, port, { REDIS_URL: redis.url }));
    const bases = ports.map((p) => `ws://${HOST}:${p}`);

    await expectStatus(`${bases[0]}/nope`, 404);
    const receivers = await Promise.all(
      RECEIVERS.map((groups, i) => engineIo(bases[i % 2], groups === null ? "" : `groups=${groups}`)),
    );
    const toAll = await engineIo(bases[0], "publisher=1"); // no `to`: means "all"
    const toGroup = await engineIo(bases[1], "publisher=1&to=group.bench");

    toAll.send(`42${JSON.stringify(["publish", FRAME_ALL])}`);
    toGroup.send(`42${JSON.stringify(["publish", FRAME_GROUP])}`);
    const want = (i) => [["message", FRAME_ALL], ...(IN_BENCH[i] ? [["message", FRAME_GROUP]] : [])];
    await settle(() => receivers.every((r, i) => events(r).length >= want(i).length), "the broadcasts to arrive");

    const sortKey = (e) => JSON.stringify(e);
    receivers.forEach((r, i) => {
      const got = events(r);
      check(
        isDeepStrictEqual(got.map(sortKey).sort(), want(i).map(sortKey).sort()),
        `receiver ${i} (groups=${RECEIVERS[i]}, process ${i % 2}): got ${JSON.stringify(got)}, expected ${JSON.stringify(want(i))}`,
      );
    });
    check(events(toAll).length === 0 && events(toGroup).length === 0, `publishers got ${JSON.stringify([...events(toAll), ...events(toGroup)])}, expected nothing`);

    for (const ws of [...receivers, toAll, toGroup]) ws.terminate();
    for (const [i, peer] of peers.entries()) await stopPeer(peer, ports[i]);
    const { pingInterval, pingTimeout, maxPayload, upgrades } = receivers[0].open;
    return (
      `2 processes on one redis, ${receivers.length} receivers: all → ${receivers.length}, group.bench → ${IN_BENCH.filter(Boolean).length}, publishers got 0; ` +
      `open packet pingInterval=${pingInterval} pingTimeout=${pingTimeout} maxPayload=${maxPayload} upgrades=${JSON.stringify(upgrades)}`
    );
  } finally {
    redis.child.kill("SIGTERM");
    await withTimeout(redis.child.exited, 5_000, "redis-server to stop").catch(() => redis.child.kill("SIGKILL"));
  }
}

// The Pusher app, and each Pusher server started with it as the suite starts
// it (bench/src/suite/servers.rs; why each setting, in README.md).
const APP = { appId: "bench", key: "bench-key", secret: "smoke-secret" };
const PUSHER_SERVERS = {
  soketi: (port, metricsPort) => [
    process.execPath,
    [path.join(HERE, "node_modules/@soketi/soketi/bin/server.js"), "start"],
    {
      SOKETI_HOST: HOST,
      SOKETI_PORT: String(port),
      SOKETI_METRICS_HOST: HOST,
      SOKETI_METRICS_SERVER_PORT: String(metricsPort),
      SOKETI_DEFAULT_APP_ID: APP.appId,
      SOKETI_DEFAULT_APP_KEY: APP.key,
      SOKETI_DEFAULT_APP_SECRET: APP.secret,
      SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: "true",
      SOKETI_SHUTDOWN_GRACE_PERIOD: "0",
      AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: "1",
    },
  ],
  sockudo: (port, metricsPort) => [
    "sockudo",
    [],
    {
      HOST,
      PORT: String(port),
      METRICS_HOST: HOST,
      METRICS_PORT: String(metricsPort),
      SOCKUDO_DEFAULT_APP_ID: APP.appId,
      SOCKUDO_DEFAULT_APP_KEY: APP.key,
      SOCKUDO_DEFAULT_APP_SECRET: APP.secret,
      SOCKUDO_DEFAULT_APP_ENABLE_CLIENT_MESSAGES: "true",
      SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS: "0",
      SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND: "1000000",
      RATE_LIMITER_ENABLED: "false",
      RUST_LOG: "warn",
    },
  ],
};
// How long a Pusher server may take to exit on SIGTERM, where it is longer
// than the others' 5 s: sockudo 5.2.0, once it has had connections, drains
// for 10 s before it exits 0 (measured here); it has no setting for that.
const PUSHER_EXIT_MS = { sockudo: 20_000 };
// Pusher receivers: the channels each subscribes to.
const PUSHER_RECEIVERS = [["bench"], ["bench", "private-bench"], ["private-bench"], []];
const PUSHER_CONNECT = "protocol=7&client=js&version=8.4.0";

/** A raw Pusher protocol 7 receiver over `ws`, as the load tool speaks it. */
async function pusherReceiver(base, channels, sdk) {
  const url = `${base}/app/${APP.key}?${PUSHER_CONNECT}`;
  const ws = await openSocket(url, (socket, text) => {
    if (JSON.parse(text).event === "pusher:ping") socket.send('{"event":"pusher:pong","data":{}}');
  });
  await settle(() => ws.got.length >= 1, `${url}: pusher:connection_established`);
  const established = JSON.parse(ws.got[0].text);
  check(established.event === "pusher:connection_established", `${url}: first frame ${ws.got[0].text}`);
  ws.socketId = JSON.parse(established.data).socket_id;
  check(/^\d+\.\d+$/.test(ws.socketId), `${url}: socket_id ${ws.socketId}, expected <digits>.<digits>`);
  for (const channel of channels) {
    const auth = channel.startsWith("private-") ? sdk.authorizeChannel(ws.socketId, channel).auth : undefined;
    ws.send(JSON.stringify({ event: "pusher:subscribe", data: { channel, ...(auth && { auth }) } }));
  }
  const succeeded = () => ws.got.map((m) => JSON.parse(m.text)).filter((f) => f.event === "pusher_internal:subscription_succeeded");
  await settle(() => succeeded().length >= channels.length, `${url}: ${channels.length} subscription(s) to succeed`);
  check(
    isDeepStrictEqual(succeeded().map((f) => f.channel).sort(), [...channels].sort()),
    `${url}: subscriptions ${JSON.stringify(succeeded())}, expected ${JSON.stringify(channels)}`,
  );
  ws.got.length = 0;
  return ws;
}

/** Whether `program` is on PATH. */
function installed(program) {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

/** A Pusher server: subscribers, pings, a signed subscription, triggers through the SDK. */
async function pusherPeer(name) {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const [command, args, env] = PUSHER_SERVERS[name](port, metricsPort);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `smoke-${name}-`));
  const child = startChild(`${name}:${port}`, command, args, env, scratch);
  try {
    await withTimeout(
      (async () => {
        while (!(await portOpen(port))) {
          check(child.exitCode === null && !child.err.includes("spawn failed"), `${name} exited at start: ${child.err.trim()}`);
          await sleep(50);
        }
      })(),
      20_000,
      `${name} to listen on ${port}`,
    );
    const sdk = new Pusher({ ...APP, host: HOST, port: String(port), useTLS: false });
    const base = `ws://${HOST}:${port}`;
    const receivers = await Promise.all(PUSHER_RECEIVERS.map((channels) => pusherReceiver(base, channels, sdk)));

    receivers[0].send('{"event":"pusher:ping","data":{}}');
    await settle(() => receivers[0].got.some((m) => JSON.parse(m.text).event === "pusher:pong"), "pusher:pong");
    receivers[0].got.length = 0;

    const data = { seq: 1, text: "héllo ✓" };
    for (const channel of ["bench", "private-bench"]) {
      const answer = await sdk.trigger(channel, "bench", data);
      check(answer.status === 200, `trigger to ${channel}: HTTP ${answer.status}`);
    }
    const want = (i) => PUSHER_RECEIVERS[i].map((channel) => ({ event: "bench", channel, data: JSON.stringify(data) }));
    await settle(() => receivers.every((r, i) => r.got.length >= want(i).length), "the triggers to arrive");
    receivers.forEach((r, i) => {
      const got = r.got.map((m) => {
        const { event, channel, data } = JSON.parse(m.text);
        return { event, channel, data };
      });
      const key = (e) => JSON.stringify(e);
      check(
        isDeepStrictEqual(got.map(key).sort(), want(i).map(key).sort()),
        `receiver ${i} (${PUSHER_RECEIVERS[i]}): got ${JSON.stringify(got)}, expected ${JSON.stringify(want(i))}`,
      );
    });

    for (const ws of receivers) ws.terminate();
    await stopPeer(child, port, PUSHER_EXIT_MS[name]);
    return `${receivers.length} receivers: bench → 2, private-bench (signed) → 2, unsubscribed → 0; pusher:ping answered; triggered through npm pusher`;
  } finally {
    child.kill("SIGKILL");
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function cleanup() {
  for (const ws of sockets) ws.terminate();
  for (const child of children) child.kill("SIGKILL");
}
process.on("exit", cleanup);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

const started = Date.now();
let [passed, failed, skipped] = [0, 0, 0];
for (const [name, run] of [
  ["uws", () => plainPeer("uws.mjs")],
  ["ws", () => plainPeer("ws.mjs")],
  ["socketio", () => socketioPeer("socketio.mjs")],
  ["soketi", () => pusherPeer("soketi")],
  ["sockudo", () => pusherPeer("sockudo")],
]) {
  if (name === "sockudo" && !installed("sockudo")) {
    skipped += 1;
    console.log("skip sockudo: not installed (cargo install sockudo --locked; `just bench` installs it, CI does not)");
    continue;
  }
  try {
    console.log(`ok   ${name}: ${await run()}`);
    passed += 1;
  } catch (error) {
    failed += 1;
    const logs = [...children].map((c) => c.err.trim() && `\n     ${c.label} stderr: ${c.err.trim()}`).join("");
    console.error(`FAIL ${name}: ${error instanceof Failure ? error.message : error.stack}${logs}`);
    cleanup();
  }
}
console.log(`smoke: ${passed} passed, ${failed} failed, ${skipped} skipped (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(failed ? 1 : 0);
