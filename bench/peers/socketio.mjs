// Benchmark peer for herald-bench: a minimal Socket.IO 4 broadcast server,
// scaled out the usual way through @socket.io/redis-adapter (REDIS_URL).
// Several of these processes may share one redis.
//
// Engine.IO v4 over WebSocket only, at /socket.io/, default namespace.
//   ?groups=a,b          receiver: joins rooms "all" and "group.<g>"; the
//                        Socket.IO connect ack (40{"sid":...}) is its greeting
//   ?publisher=1&to=T    publisher: joins no room; each `publish` event's
//                        argument is emitted as ("message", frame) to room T
//                        ("all" when missing) on every process, via redis
//
// "Everyone" is the room "all", which only receivers join, so a publisher
// never receives a broadcast (io.emit would reach publishers too).
import http from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { exitOnSignal, fail, listenAddress, parseGroups, publishTopic, ready } from "./common.mjs";

const { host, port } = listenAddress();
const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";

// A peer that lost redis no longer broadcasts across processes: stop loudly.
const pubClient = createClient({ url: redisUrl });
const subClient = pubClient.duplicate();
for (const client of [pubClient, subClient]) {
  client.on("error", (error) => fail(`socketio: redis ${redisUrl}: ${error.message || error}`));
}
await Promise.all([pubClient.connect(), subClient.connect()]);

const server = http.createServer((req, res) => {
  res.writeHead(404, { "content-type": "text/plain" }).end("not found");
});
const io = new Server(server, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  adapter: createAdapter(pubClient, subClient),
});

// The adapter subscribes when the namespace is made, without waiting for
// redis: a subscription of ours on the same connection is answered after
// its ones, so once it is, this process hears every broadcast.
await subClient.subscribe("herald-bench-peer-ready", () => {});
await subClient.unsubscribe("herald-bench-peer-ready");

io.on("connection", (socket) => {
  const query = socket.handshake.query;
  if (query.publisher === "1") {
    const to = publishTopic(query.to);
    socket.on("publish", (frame) => io.to(to).emit("message", frame));
    return;
  }
  socket.join(["all", ...parseGroups(query.groups).map((g) => `group.${g}`)]);
});

// Engine.IO owns /socket.io/; any other WebSocket upgrade gets a 404.
server.on("upgrade", (req, socket) => {
  if (!req.url.startsWith("/socket.io/")) socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
});
server.on("error", (error) => fail(`socketio: cannot listen on ${host}:${port}: ${error.message}`));
server.listen(port, host, () => {
  ready(host, server.address().port);
  exitOnSignal(() => server.close());
});
