/**
 * The failures, each with what must hold afterwards and the goal it is
 * measured against.
 *
 * A scenario's `act` breaks something, waits for the clients to be back,
 * and repairs what it broke (so the next one starts from a whole cluster);
 * it returns the moment delivery is measured from. `check` lists what went
 * wrong (empty: it held). The suite also checks, after every scenario, that
 * nothing was delivered twice, that a message to every user and group
 * reaches every client, and that presence counts every client exactly once.
 *
 * A scenario with `settings` (HERALD_* variables for the edges and routers)
 * needs a cluster of its own: it runs only when named with --only, alone
 * or with others of the same settings.
 *
 * `bound` is what CI asserts on a noisy machine: three times the goal, loose
 * enough not to flake, tight enough to catch a regression to the seconds
 * measured before the recommended settings (docs/failures.md).
 */

import { sleep } from './fleet.mjs';

const EDGES = ['edge-1', 'edge-2', 'edge-3'];
const NATS = ['nats-1', 'nats-2', 'nats-3'];
const ROUTERS = ['router-1', 'router-2'];
/** How long a NATS node stays frozen. */
const FREEZE_MS = 15_000;
/** How long all of NATS stays down. */
const OUTAGE_MS = 10_000;
/** Time NATS may take, on a loaded machine, to drop a killed router's subscription. */
const ROUTER_GONE_MS = 1000;
/** Clients are back within this, or the scenario fails. */
const BACK_TIMEOUT_MS = 30_000;

export const SCENARIOS = [
  {
    name: 'edge-kill',
    title: 'SIGKILL an edge',
    goal: { text: 'every affected client back within 1 s (p99)', metric: 'reconnectP99', limit: 1000 },
    act: killBusiestEdge,
    check: edgeKillProblems,
  },
  {
    name: 'edge-kill-recovery',
    title: 'SIGKILL an edge, with missed-message recovery on',
    goal: { text: 'no message lost: the killed edge\'s clients recover what they missed', metric: 'lost', limit: 0 },
    // On a cluster of its own: NATS with JetStream, edges keeping a history
    // (ADR 0012). Runs only when named (--only), as CI does.
    settings: { HERALD_HISTORY: 'users,groups', HERALD_HISTORY_REPLICAS: '3' },
    act: killBusiestEdge,
    figures: (result) => ({ lost: result.lostWhileConnected + result.lostAroundReconnect }),
    check(result, marks, fleet, snapshot) {
      const problems = edgeKillProblems(result, marks);
      const lost = result.lostWhileConnected + result.lostAroundReconnect;
      if (lost) problems.push(`${lost} messages lost`);
      const unrecovered = [...marks.onVictim].filter((index) => {
        const after = snapshot.members[index].recoveries.filter((r) => r.at > marks.event);
        return after.length === 0 || after.some((r) => !r.recovered);
      });
      if (unrecovered.length) problems.push(`${unrecovered.length} clients of the killed edge were not told recovered: true`);
      return problems;
    },
  },
  {
    name: 'nats-kill',
    title: 'SIGKILL one NATS node',
    goal: { text: 'no session closed, delivery back within 2 s', metric: 'resumedAfterMs', limit: 2000 },
    async act({ cluster, quick }) {
      // The node most Herald processes are connected to, so the failover is real.
      const victim = await busiestNats(cluster);
      const event = Date.now();
      await cluster.stop(victim.node, 'KILL');
      await sleep(quick ? 3000 : 5000);
      await cluster.restart(victim.node);
      return { event, note: `${victim.node} served ${victim.clients.join(', ') || 'no Herald process'}` };
    },
    check: (result) => noSessionClosed(result),
  },
  {
    name: 'nats-freeze',
    title: 'Freeze one NATS node (SIGSTOP: no reset, as when its machine is gone)',
    // Found by the NATS clients' pings (every 2 s, three missed), not by a
    // reset; a reconnect gives the frozen server 2 s if it tries it first.
    goal: { text: 'no session closed, delivery back within 10 s', metric: 'resumedAfterMs', limit: 10_000 },
    // Long runs only: it takes the detection time and more.
    long: true,
    async act({ cluster }) {
      const victim = await busiestNats(cluster);
      const event = Date.now();
      await cluster.signal(victim.node, 'STOP');
      await sleep(FREEZE_MS);
      await cluster.signal(victim.node, 'CONT');
      await cluster.waitReady(victim.node);
      return { event, note: `${victim.node} served ${victim.clients.join(', ') || 'no Herald process'}, frozen ${FREEZE_MS / 1000} s` };
    },
    check: (result) => noSessionClosed(result),
  },
  {
    name: 'router-kill',
    title: 'SIGKILL a router',
    goal: { text: 'actions keep being answered: none fails that was sent after the kill', metric: 'actionsFailedAfterKill', limit: 0 },
    async act({ cluster, quick }) {
      const event = Date.now();
      await cluster.stop('router-1', 'KILL');
      await sleep(quick ? 3000 : 5000);
      await cluster.restart('router-1');
      return { event };
    },
    // Requests the router held when it died are lost with it; their edges
    // answer 504 at the action timeout. Any other failure is not, but for
    // requests sent just after the kill, before a loaded NATS server has
    // read the reset and dropped the router's subscription.
    figures: (result, { event }) => ({ actionsFailedAfterKill: lateFailures(result, event).length }),
    check(result, { event }) {
      const late = lateFailures(result, event);
      const problems = noSessionClosed(result);
      if (late.length) problems.push(`${late.length} actions sent after the kill failed (${late[0].message})`);
      return problems;
    },
  },
  {
    name: 'rolling-restart',
    title: 'Rolling restart (SIGTERM each edge in turn)',
    goal: { text: 'no client-visible error other than the restart close code', metric: 'clientVisibleErrors', limit: 0 },
    async act({ cluster, fleet }) {
      let event = Date.now();
      for (const edge of EDGES) {
        event = Date.now();
        await cluster.stop(edge, 'TERM'); // drains: every session closed with the restart code
        await cluster.restart(edge);
        await fleet.allConnected(BACK_TIMEOUT_MS);
      }
      return { event, note: 'delivery measured from the last SIGTERM' };
    },
    figures: (result, _marks, fleet) => ({
      clientVisibleErrors:
        result.closes.filter((c) => c.code !== fleet.protocol.restartCloseCode).length +
        result.failedReconnectAttempts +
        failuresOtherThanRestart(result, fleet).length,
    }),
    check(result, _marks, fleet) {
      const problems = [];
      const restartCode = String(fleet.protocol.restartCloseCode);
      const codes = Object.keys(result.closeCodes).filter((code) => code !== restartCode);
      const closed = new Set(result.closes.map((c) => c.member));
      const otherFailures = failuresOtherThanRestart(result, fleet);
      if (codes.length) problems.push(`close codes other than ${restartCode}: ${codes}`);
      if (closed.size !== fleet.size) problems.push(`${fleet.size - closed.size} clients were never restarted`);
      if (result.failedReconnectAttempts) problems.push(`${result.failedReconnectAttempts} reconnect attempts failed`);
      if (otherFailures.length) problems.push(`${otherFailures.length} actions failed (${otherFailures[0].message})`);
      return problems;
    },
  },
  {
    name: 'router-restart',
    title: 'Rolling restart of the routers (SIGTERM each in turn)',
    goal: { text: 'no action fails: a draining router answers every request NATS gave it', metric: 'actionsFailed', limit: 0 },
    async act({ cluster }) {
      let event = Date.now();
      for (const router of ROUTERS) {
        event = Date.now();
        await cluster.stop(router, 'TERM'); // drains: leaves its queue groups, answers what it was given, exits
        await cluster.restart(router);
      }
      return { event, note: 'delivery measured from the last SIGTERM' };
    },
    figures: (result) => ({ actionsFailed: result.failedActions.length }),
    check(result) {
      const problems = noSessionClosed(result);
      const failed = result.failedActions;
      if (failed.length) problems.push(`${failed.length} actions failed (${failed[0].message})`);
      return problems;
    },
  },
  {
    name: 'nats-outage',
    title: 'All of NATS down for 10 s',
    goal: { text: 'every session survives; delivery resumes once NATS is back', metric: 'sessionsClosed', limit: 0 },
    async act({ cluster }) {
      await Promise.all(NATS.map((node) => cluster.stop(node, 'KILL')));
      await sleep(OUTAGE_MS);
      await Promise.all(NATS.map((node) => cluster.start(node)));
      const event = Date.now();
      await Promise.all(NATS.map((node) => cluster.waitReady(node)));
      // Edges and routers were unready meanwhile; HAProxy takes them back.
      await Promise.all([...EDGES, 'router-1', 'router-2'].map((node) => cluster.waitLb(node, 'UP')));
      return { event, note: 'delivery measured from NATS back' };
    },
    check: (result) => noSessionClosed(result),
  },
];

/** Kills the edge with the most clients (after a restart, an edge has few). */
async function killBusiestEdge({ cluster, fleet }) {
  const { members } = await fleet.snapshot();
  const clientsOf = (edge) => members.filter((m) => openConn(m)?.startsWith(`${cluster.edgeId(edge)}.`)).map((m) => m.index);
  const victim = EDGES.reduce((best, edge) => (clientsOf(edge).length > clientsOf(best).length ? edge : best));
  const onVictim = new Set(clientsOf(victim));
  const event = Date.now();
  await cluster.stop(victim, 'KILL');
  await fleet.allConnected(BACK_TIMEOUT_MS);
  await cluster.restart(victim);
  return { event, onVictim, note: `${onVictim.size} clients were on ${victim}` };
}

/** What must hold when an edge was killed: only its clients noticed, as a lost connection. */
function edgeKillProblems(result, { onVictim }) {
  const problems = [];
  const closed = new Set(result.closes.map((c) => c.member));
  const bystanders = [...closed].filter((m) => !onVictim.has(m));
  if (bystanders.length) problems.push(`${bystanders.length} clients not on the killed edge lost their session`);
  const kept = [...onVictim].filter((m) => !closed.has(m));
  if (kept.length) problems.push(`${kept.length} clients of the killed edge never noticed`);
  const codes = Object.keys(result.closeCodes).filter((code) => code !== '1006');
  if (codes.length) problems.push(`close codes other than 1006 (connection lost): ${codes}`);
  const lostBystanders = [...result.lostByMember.keys()].filter((m) => !onVictim.has(m));
  if (lostBystanders.length) problems.push(`${lostBystanders.length} clients not on the killed edge lost messages`);
  return problems;
}

/** The connection id of a client's open session, if it has one. */
function openConn(member) {
  const last = member.sessions[member.sessions.length - 1];
  return last && last.end === undefined ? last.conn : null;
}

/** Actions that failed although sent well after the router died. */
function lateFailures(result, event) {
  return result.failedActions.filter((a) => a.at > event + ROUTER_GONE_MS);
}

/**
 * Failed actions other than those in flight when their session closed for
 * the restart: the client refuses those with the close code in the message
 * (they may or may not have been handled), which is the restart itself.
 */
function failuresOtherThanRestart(result, fleet) {
  const code = fleet.protocol.restartCloseCode;
  return result.failedActions.filter((a) => !(a.code === 499 && a.message.includes(`(${code} `)));
}

function noSessionClosed(result) {
  return result.sessionsClosed ? [`${result.sessionsClosed} sessions closed (codes ${Object.keys(result.closeCodes)})`] : [];
}

/** The NATS node with the most Herald processes (edges, routers, examples) connected. */
async function busiestNats(cluster) {
  const net = cluster.settings.HERALD_CLUSTER_NET;
  const nodes = await Promise.all(
    NATS.map(async (node, i) => {
      const connz = await fetch(`http://${net}.1.${i + 1}:8222/connz`).then((r) => r.json());
      return { node, clients: connz.connections.map((c) => c.name).filter(Boolean).sort() };
    }),
  );
  return nodes.reduce((best, node) => (node.clients.length > best.clients.length ? node : best));
}
