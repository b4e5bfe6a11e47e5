// The chat demo losing nothing when its edge dies (missed-message
// recovery, ADR 0012), in Debian's Chromium: real nats-server with
// JetStream (store in a temporary directory), two edges with a history of
// users and groups, a router, the example chat handler, the cluster's demo
// site, and HAProxy in front with the cluster's settings
// (scripts/cluster/haproxy.cfg), as `just cluster-recovery` runs them.
// A publisher sends a numbered stream to the page's room; the page's edge
// is SIGKILLed mid-stream and the page kept away a while (its request for a
// fresh token held); it reconnects through HAProxy to the other edge, gets
// what it missed before `$recovered`, says it recovered, and shows every
// number once, in order.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { HERALD, REPO, eventually, freePort, sleep, startProcess, stopProcess, track } from '../../tests/harness-js/processes.js';
import { launchChromium } from './chromium.js';

const EXAMPLES = process.env.HERALD_EXAMPLES_BIN ?? join(REPO, 'target/debug/herald-examples');
const ARTIFACTS = join(REPO, 'artifacts/e2e');
const ROOM = 'e2e';
/** Numbers published to the room, one every PUBLISH_EVERY_MS. */
const COUNT = 120;
const PUBLISH_EVERY_MS = 40;
/** Numbers the page shows before its edge is killed. */
const SHOWN_BEFORE_KILL = 20;
/**
 * Numbers published while the page is held away after the kill (its
 * reconnect waits for a fresh token, whose request the test holds): all
 * of them must come from the history, before `$recovered`.
 */
const PUBLISHED_WHILE_AWAY = 40;
/** Bounds for a starved 2-core machine (load average 10+): generous. */
const START_MS = 60_000;
const RECOVER_MS = 60_000;

const secret = `e2e-${process.pid}-${Date.now()}`;
const apiKey = `e2e-key-${process.pid}-${Date.now()}`;
/** @type {Record<string, import('node:child_process').ChildProcess>} */
const processes = {};
/** @type {{ name: string, url: string }[]} */
const edges = [];
let dir = '';
let lbUrl = '';
let routerUrl = '';
/** @type {import('playwright-core').BrowserContext} */
let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'herald-e2e-recovery-'));
  const natsPort = await freePort();
  const natsUrl = `nats://127.0.0.1:${natsPort}`;
  processes.nats = await startProcess(
    'nats-server',
    ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', join(dir, 'jetstream')],
    {},
    /Server is ready/,
  );

  const routes = join(dir, 'routes.toml');
  writeFileSync(routes, '[[routes]]\naction = "chat/*"\nnats = "examples.chat"\n');
  const [edge1, edge2, router, site, lb] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const history = 'users,groups';
  const edgeEnv = (port) => ({
    HERALD_LISTEN: `127.0.0.1:${port}`,
    HERALD_NATS_URL: natsUrl,
    HERALD_JWT_SECRET: secret,
    HERALD_ALLOWED_ORIGINS: '*',
    HERALD_HISTORY: history,
  });
  // The first edge creates the history stream; the second finds it.
  processes['edge-1'] = await startProcess(HERALD, ['edge'], edgeEnv(edge1), /edge \S+ listening on/);
  [processes['edge-2'], processes.router, processes.examples, processes.site] = await Promise.all([
    startProcess(HERALD, ['edge'], edgeEnv(edge2), /edge \S+ listening on/),
    startProcess(
      HERALD,
      ['router'],
      { HERALD_LISTEN: `127.0.0.1:${router}`, HERALD_API_KEY: apiKey, HERALD_ROUTES_FILE: routes, HERALD_NATS_URL: natsUrl },
      /router listening on/,
    ),
    startProcess(EXAMPLES, ['chat'], { HERALD_NATS_URL: natsUrl, NO_COLOR: '1' }, /handler serving/),
    startProcess(
      'node',
      [join(REPO, 'scripts/cluster/site.mjs')],
      { HERALD_SITE_LISTEN: `127.0.0.1:${site}`, HERALD_JWT_SECRET: secret, HERALD_HISTORY: history },
      /site listening on/,
    ),
  ]);
  edges.push({ name: 'edge-1', url: `http://127.0.0.1:${edge1}` }, { name: 'edge-2', url: `http://127.0.0.1:${edge2}` });
  routerUrl = `http://127.0.0.1:${router}`;

  // HAProxy with the cluster's configuration; it names three edges and two
  // routers: the third edge is the second again, both routers the one.
  lbUrl = `http://127.0.0.1:${lb}`;
  processes.haproxy = track(
    spawn('haproxy', ['-db', '-f', join(REPO, 'scripts/cluster/haproxy.cfg')], {
      env: {
        ...process.env,
        HERALD_LB_LISTEN: `127.0.0.1:${lb}`,
        HERALD_LB_SITE: `127.0.0.1:${site}`,
        HERALD_LB_EDGE_1: `127.0.0.1:${edge1}`,
        HERALD_LB_EDGE_2: `127.0.0.1:${edge2}`,
        HERALD_LB_EDGE_3: `127.0.0.1:${edge2}`,
        HERALD_LB_ROUTER_1: `127.0.0.1:${router}`,
        HERALD_LB_ROUTER_2: `127.0.0.1:${router}`,
      },
      stdio: ['ignore', 'ignore', process.env.HERALD_TEST_LOGS ? 'inherit' : 'ignore'],
    }),
  );
  await eventually(
    async () => {
      if (processes.haproxy.exitCode !== null) throw new Error(`haproxy exited with ${processes.haproxy.exitCode}`);
      const states = await lbStates().catch(() => ({}));
      return states['edge-1'] === 'UP' && states['edge-2'] === 'UP';
    },
    'HAProxy to see both edges UP',
    START_MS,
  );
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  // The way in first, then the edges, then what they use.
  for (const name of ['haproxy', 'site', 'edge-1', 'edge-2', 'router', 'examples', 'nats']) {
    if (processes[name]) await stopProcess(processes[name]);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** HAProxy's health-check state of each server: UP, DOWN, or a transition. */
async function lbStates() {
  const csv = await (await fetch(`${lbUrl}/haproxy-stats;csv`)).text();
  return Object.fromEntries(csv.split('\n').map((line) => line.split(',')).filter((f) => f.length > 17).map((f) => [f[1], f[17]]));
}

/** Herald sessions an edge holds now, from its /metrics. */
async function sessionsOn(edge) {
  const metrics = await (await fetch(`${edge.url}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith('herald_edge_sessions{protocol="herald"}'));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Publishes `chat/message` number `n` to the room through the router's HTTP API. */
async function publishNumber(n) {
  const response = await fetch(`${routerUrl}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      to: { groups: [`room:${ROOM}`] },
      action: 'chat/message',
      details: { room: ROOM, user: 'feed', text: `#${n}`, at: new Date().toISOString() },
    }),
  });
  assert.equal(response.status, 200, `publish #${n}: ${await response.text()}`);
}

/** The numbers the page shows, in the order shown. */
async function numbersShown(page) {
  const texts = await page.locator('.message[data-user="feed"] .text').allTextContents();
  return texts.map((text) => Number(text.slice(1)));
}

test('the page’s edge is SIGKILLed mid-stream: it reconnects, says recovered, and shows every number once, in order', async (t) => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${lbUrl}/`);
  await page.getByRole('textbox', { name: 'Your name' }).fill('ann');
  await page.getByRole('textbox', { name: 'Room' }).fill(ROOM);
  await page.getByRole('button', { name: 'Join' }).click();
  await page.locator('#status[data-state="connected"]').waitFor({ timeout: START_MS });
  await page.locator('.notice', { hasText: 'ann joined' }).or(page.locator('#online li')).first().waitFor({ timeout: START_MS });

  // Which edge holds the page (HAProxy chose one).
  let victim;
  await eventually(
    async () => {
      const counts = await Promise.all(edges.map(sessionsOn));
      victim = edges.find((_, i) => counts[i] === 1 && counts[1 - i] === 0);
      return victim !== undefined;
    },
    'the page’s session on exactly one edge',
    START_MS,
  );
  const survivor = edges.find((edge) => edge !== victim);

  let published = 0;
  const publishing = (async () => {
    for (let n = 0; n < COUNT; n += 1) {
      await publishNumber(n);
      published = n + 1;
      await sleep(PUBLISH_EVERY_MS);
    }
  })();
  publishing.catch(() => {}); // awaited below; a failure there is the test's
  await eventually(async () => (await numbersShown(page)).length >= SHOWN_BEFORE_KILL, `${SHOWN_BEFORE_KILL} numbers shown`, RECOVER_MS);
  // The page asks for a fresh token before it reconnects: held until
  // PUBLISHED_WHILE_AWAY more numbers are out, so it surely misses them.
  let letBack = () => {};
  const away = new Promise((resolve) => (letBack = resolve));
  await page.route('**/dev/token?*', async (route) => {
    await away;
    await route.continue();
  });
  const killedAt = published;
  const victimProcess = processes[victim.name];
  victimProcess.kill('SIGKILL');
  await once(victimProcess, 'exit');
  await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: RECOVER_MS });
  await eventually(() => published >= killedAt + PUBLISHED_WHILE_AWAY, `${PUBLISHED_WHILE_AWAY} more published`, RECOVER_MS);
  const publishedAway = published;
  letBack();

  const notice = page.locator('.notice', { hasText: 'Reconnected: every message sent meanwhile was delivered (recovered).' });
  await notice.waitFor({ timeout: RECOVER_MS });
  // What came before `$recovered` on the new connection is the replay.
  const beforeNotice = await page.locator('#messages > li').evaluateAll((items) => {
    const at = items.findIndex((item) => item.classList.contains('notice') && item.textContent.includes('(recovered)'));
    return items.slice(0, at).filter((item) => item.dataset.user === 'feed').length;
  });
  t.diagnostic(`killed after ${killedAt} published; ${publishedAway - killedAt} more published while away; ${beforeNotice} shown before "recovered"`);
  assert.ok(
    beforeNotice >= publishedAway,
    `every number published while the page was away (to #${publishedAway - 1}) came before "recovered" (only to #${beforeNotice - 1})`,
  );
  await publishing;
  assert.ok(killedAt < COUNT, `the edge was killed mid-stream (after ${killedAt} of ${COUNT} published)`);
  await eventually(async () => (await numbersShown(page)).length >= COUNT, `all ${COUNT} numbers shown`, RECOVER_MS);
  // Anything late (a duplicate) would come within a moment: look again.
  await sleep(500);
  assert.deepEqual(await numbersShown(page), [...Array(COUNT).keys()], 'every number once, in order');

  assert.equal(await page.locator('#status').getAttribute('data-state'), 'connected');
  assert.equal(await page.locator('.notice', { hasText: 'could not be recovered' }).count(), 0);
  assert.equal(await sessionsOn(survivor), 1, `the page is on ${survivor.name} now`);
  await notice.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(ARTIFACTS, '08-recovered-after-edge-kill.png') });
  assert.deepEqual(errors, [], 'no script errors on the page');
});
