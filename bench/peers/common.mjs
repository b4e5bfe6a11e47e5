// Shared helpers for the benchmark peers (uws.mjs, ws.mjs, socketio.mjs):
// the environment they read, the groups list, the ready line, the exit paths.
// These are benchmark peers for herald-bench, not production servers.

/** Prints one line to stderr and exits non-zero. */
export function fail(message) {
  process.stderr.write(`${String(message).replace(/\s+/g, " ").trim()}\n`);
  process.exit(1);
}

/** HOST (default 127.0.0.1) and PORT (default 9001; 0 picks a free port). */
export function listenAddress() {
  const host = process.env.HOST || "127.0.0.1";
  const text = process.env.PORT ?? "9001";
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) fail(`bad PORT=${JSON.stringify(text)}: expected 0..65535`);
  return { host, port };
}

/** "a, b,,c" → ["a", "b", "c"]; missing or empty → []. */
export function parseGroups(value) {
  if (!value) return [];
  return [...new Set(String(value).split(",").map((g) => g.trim()).filter(Boolean))];
}

/** The publisher's target topic: `to`, or "all" when missing or empty. */
export function publishTopic(value) {
  return value ? String(value) : "all";
}

/** The one line the load tool waits for. */
export function ready(host, port) {
  process.stdout.write(`listening on ${host}:${port}\n`);
}

/** On SIGTERM/SIGINT: run `close` (stop listening), then exit 0. */
export function exitOnSignal(close) {
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    try {
      close();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
