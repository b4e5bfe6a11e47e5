// Benchmark peer for herald-bench: a minimal broadcast server on Node's
// `http` module and the `ws` package.
//
//   /ws?groups=a,b   receiver: in topics "all" and "group.<g>", greeted with
//                    {"action":"$connected"}; what it sends is ignored
//   /publish?to=T    publisher: each text message is sent verbatim, as the
//                    same Buffer, to every socket of topic T ("all" when missing)
//   anything else    404
//
// ws defaults are kept: no per-message deflate, no server-side timeouts or
// pings, no limit on a socket's send buffer (a slow receiver buffers in
// memory, it is never skipped).
import http from "node:http";
import { WebSocketServer, WebSocket } from "ws";
import { exitOnSignal, fail, listenAddress, parseGroups, publishTopic, ready } from "./common.mjs";

const CONNECTED = '{"action":"$connected"}';
const { host, port } = listenAddress();

/** topic → Set of receiver sockets */
const topics = new Map();

function join(topic, ws) {
  let members = topics.get(topic);
  if (!members) topics.set(topic, (members = new Set()));
  members.add(ws);
}

function leave(topic, ws) {
  const members = topics.get(topic);
  if (members && members.delete(ws) && members.size === 0) topics.delete(topic);
}

function receiver(ws, query) {
  const joined = ["all", ...parseGroups(query.get("groups")).map((g) => `group.${g}`)];
  for (const topic of joined) join(topic, ws);
  ws.on("close", () => joined.forEach((topic) => leave(topic, ws)));
  ws.send(CONNECTED);
}

function publisher(ws, query) {
  const to = publishTopic(query.get("to"));
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    const members = topics.get(to);
    if (!members) return;
    for (const member of members) {
      if (member.readyState === WebSocket.OPEN) member.send(data, { binary: false });
    }
  });
}

const routes = { "/ws": receiver, "/publish": publisher };
const wss = new WebSocketServer({ noServer: true, clientTracking: false });
const server = http.createServer((req, res) => {
  res.writeHead(404, { "content-type": "text/plain" }).end("not found");
});

server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://peer");
  const route = routes[url.pathname];
  if (!route) {
    socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on("error", () => {}); // a client's protocol error closes that socket only
    route(ws, url.searchParams);
  });
});

server.on("error", (error) => fail(`ws: cannot listen on ${host}:${port}: ${error.message}`));
server.listen(port, host, () => {
  ready(host, server.address().port);
  exitOnSignal(() => server.close());
});
