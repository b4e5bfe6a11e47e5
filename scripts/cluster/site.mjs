/**
 * The local cluster's demo site: the demo chat page, the JavaScript client
 * it loads, and /dev/token, which mints a token for any user name with the
 * cluster's secret. `herald dev` serves the same files from its binary; in
 * the cluster HAProxy sends every path that is not /ws or /api/ here.
 *
 *   HERALD_SITE_LISTEN=127.0.0.1:8082 HERALD_JWT_SECRET=... [HERALD_HISTORY=...] node site.mjs
 */

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { mintToken } from './token.mjs';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAX_USER_CHARS = 64;
/** A room name the demo and the chat handler take. */
const ROOM = /^[A-Za-z0-9_-]{1,64}$/;

/** URL path → [file in the repository, content type], as `herald dev` serves them. */
const FILES = {
  '/': ['demo/index.html', 'text/html; charset=utf-8'],
  '/demo/app.js': ['demo/app.js', 'text/javascript; charset=utf-8'],
  '/demo/style.css': ['demo/style.css', 'text/css; charset=utf-8'],
  '/sdk/herald.js': ['clients/js/herald.js', 'text/javascript; charset=utf-8'],
  '/sdk/herald.d.ts': ['clients/js/herald.d.ts', 'text/plain; charset=utf-8'],
};

const secret = process.env.HERALD_JWT_SECRET;
const listen = process.env.HERALD_SITE_LISTEN ?? '127.0.0.1:8082';
const history = !['', 'off'].includes(process.env.HERALD_HISTORY ?? '');
if (!secret) {
  console.error('site: HERALD_JWT_SECRET is not set');
  process.exit(2);
}

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://site');
  if (url.pathname === '/dev/token') {
    const user = url.searchParams.get('user') ?? '';
    if (user.length < 1 || [...user].length > MAX_USER_CHARS) {
      return json(response, 400, { error: `"user" must be 1 to ${MAX_USER_CHARS} characters` });
    }
    // With a history (HERALD_HISTORY), the demo's room is a group of the
    // token: the connection is in it from the start, so a client resuming
    // after its edge died gets the room's missed messages (a room joined
    // through chat/join, a handler's effect, is not recovered: PROTOCOL
    // 5.25). Without one, chat/join joins it and announces the newcomer.
    const room = url.searchParams.get('room');
    const claims = history && room && ROOM.test(room) ? { groups: [`room:${room}`] } : {};
    return json(response, 200, { token: mintToken(secret, user, claims), user });
  }
  const file = FILES[url.pathname];
  if (!file) return json(response, 404, { error: 'not found' });
  // Read at each request, so an edited demo shows without a restart.
  response.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-cache' });
  response.end(readFileSync(REPO + file[0]));
});

const [host, port] = [listen.slice(0, listen.lastIndexOf(':')), Number(listen.slice(listen.lastIndexOf(':') + 1))];
server.listen(port, host, () => console.log(`site listening on http://${listen}`));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

/**
 * @param {import('node:http').ServerResponse} response
 * @param {number} status
 * @param {object} body
 */
function json(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body));
}
