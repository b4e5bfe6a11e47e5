// Benchmark peer for herald-bench: a minimal uWebSockets.js broadcast server
// (npm package `uwebsockets`, see README.md for what that package is).
//
//   /ws?groups=a,b   receiver: subscribed to "all" and "group.<g>", greeted
//                    with {"action":"$connected"}; what it sends is ignored
//   /publish?to=T    publisher: each text message goes verbatim to topic T
//                    ("all" when missing) through uWS's native pub/sub
//   anything else    404
import uWS from "uWebSockets.js";
import { exitOnSignal, fail, listenAddress, parseGroups, publishTopic, ready } from "./common.mjs";

const CONNECTED = '{"action":"$connected"}';
const { host, port } = listenAddress();
const app = uWS.App();

// Kept as uWS defaults: maxPayloadLength 16 KiB, maxBackpressure 64 KiB,
// closeOnBackpressureLimit false. Not a default: idleTimeout 0, so uWS never
// times out an idle receiver nor pings it (the default, 120 s, closes a
// client that does not answer uWS's pings in time).
const common = { compression: uWS.DISABLED, idleTimeout: 0 };

function upgrade(res, req, context, userData) {
  res.upgrade(
    userData,
    req.getHeader("sec-websocket-key"),
    req.getHeader("sec-websocket-protocol"),
    req.getHeader("sec-websocket-extensions"),
    context,
  );
}

app.ws("/ws", {
  ...common,
  upgrade: (res, req, context) => upgrade(res, req, context, { groups: parseGroups(req.getQuery("groups")) }),
  open: (ws) => {
    ws.subscribe("all");
    for (const group of ws.getUserData().groups) ws.subscribe(`group.${group}`);
    ws.send(CONNECTED, false);
  },
  message: () => {},
});

app.ws("/publish", {
  ...common,
  upgrade: (res, req, context) => upgrade(res, req, context, { to: publishTopic(req.getQuery("to")) }),
  message: (ws, message, isBinary) => {
    if (!isBinary) app.publish(ws.getUserData().to, message, false, false);
  },
});

app.any("/*", (res) => {
  res.writeStatus("404 Not Found").end("not found");
});

// Exclusive: without it uWS sets SO_REUSEPORT and a second server on the
// same port would start silently instead of failing.
app.listen(host, port, uWS.LIBUS_LISTEN_EXCLUSIVE_PORT, (listenSocket) => {
  if (!listenSocket) fail(`uws: cannot listen on ${host}:${port}`);
  ready(host, uWS.us_socket_local_port(listenSocket));
  exitOnSignal(() => uWS.us_listen_socket_close(listenSocket));
});
