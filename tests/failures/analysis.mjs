/**
 * What happened in one scenario's window, from the clients' and the
 * publisher's records: sessions closed and reconnect times, messages lost
 * and duplicated, when delivery resumed, how actions went.
 */

/**
 * A message counts as lost "around a reconnect" rather than "while
 * connected" if its receiver's session did not span from its publication
 * to this long after the API answered: it may have been on its way to a
 * socket that was about to close.
 */
const IN_FLIGHT_MARGIN_MS = 500;

/**
 * A message that reaches a client later than this after the backend sent
 * it is late: delivery is not back while messages arrive late (a frozen
 * NATS server delivers what it held when it thaws, long after).
 */
const LATE_MS = 1000;

/**
 * @param {{ snapshot: Awaited<ReturnType<import('./fleet.mjs').Fleet['snapshot']>>,
 *           fleet: import('./fleet.mjs').Fleet, publisher: import('./publisher.mjs').Publisher,
 *           from: number, to: number, event: number }} window
 *   `snapshot`: the clients' records; `from`..`to`: the window; `event`:
 *   when the failure that delivery resumes from happened (a kill, or NATS
 *   coming back).
 */
export function analyse({ snapshot, fleet, publisher, from, to, event }) {
  const within = (time) => time >= from && time <= to;
  const members = snapshot.members;

  // Sessions that closed in the window, and how long each client took to be back.
  const closes = [];
  for (const member of members) {
    member.sessions.forEach((session, i) => {
      if (session.end === undefined || !within(session.end)) return;
      const next = member.sessions[i + 1];
      closes.push({ member: member.index, conn: session.conn, at: session.end, code: session.code, backAfter: next ? next.start - session.end : null });
    });
  }
  const backTimes = closes.map((c) => c.backAfter).filter((t) => t !== null);
  const closeCodes = {};
  for (const close of closes) closeCodes[close.code] = (closeCodes[close.code] ?? 0) + 1;

  // Deliveries.
  const published = publisher.messages.filter((m) => within(m.sent) && m.answered !== undefined && m.answered <= to);
  const accepted = published.filter((m) => m.accepted);
  let expected = 0;
  let delivered = 0;
  let late = 0;
  const latencies = [];
  let lostWhileConnected = 0;
  let lostAroundReconnect = 0;
  /** After the event: accepted messages in order, and whether each reached all its clients. */
  const sinceEvent = [];
  const lostByMember = new Map();
  for (const message of accepted) {
    let complete = true;
    for (const { index } of fleet.receivers(message.target)) {
      const member = members[index];
      expected += 1;
      const times = member.received.get(message.id);
      if (times) {
        delivered += 1;
        const latency = times[0] - message.sent;
        latencies.push(latency);
        if (latency > LATE_MS) {
          late += 1;
          complete = false;
        }
        continue;
      }
      complete = false;
      const session = sessionAt(member, message.sent);
      const spanned = session && (session.end === undefined || session.end >= message.answered + IN_FLIGHT_MARGIN_MS);
      if (spanned) {
        lostWhileConnected += 1;
        lostByMember.set(member.index, (lostByMember.get(member.index) ?? 0) + 1);
      } else {
        lostAroundReconnect += 1;
      }
    }
    if (message.sent >= event) sinceEvent.push({ sent: message.sent, complete });
  }
  // Delivery is back with the first message published after the event
  // that reached all its clients in time, as did every one after it.
  let resumedAt = null;
  for (let i = sinceEvent.length - 1; i >= 0 && sinceEvent[i].complete; i -= 1) resumedAt = sinceEvent[i].sent;
  let duplicates = 0;
  const ids = new Set(accepted.map((m) => m.id));
  for (const member of members) {
    for (const [id, times] of member.received) if (ids.has(id)) duplicates += times.length - 1;
  }

  // Actions sent in the window, and how the failed ones failed.
  const actions = members.flatMap((m) => m.actions.filter((a) => within(a.at) && a.done !== undefined));
  const failed = actions.filter((a) => !a.ok);
  const failures = {};
  for (const action of failed) {
    const kind = action.local ? (action.code === 499 ? 'cut by a close' : 'timed out') : `answered ${action.code}`;
    failures[kind] = (failures[kind] ?? 0) + 1;
  }

  const attempts = members.flatMap((m) => m.attempts.filter((a) => within(a.at)));
  return {
    clients: members.length,
    closes,
    sessionsClosed: closes.length,
    closeCodes,
    reconnected: backTimes.length,
    reconnectP50: percentile(backTimes, 50),
    reconnectP99: percentile(backTimes, 99),
    reconnectMax: backTimes.length ? Math.max(...backTimes) : null,
    // A failed attempt is one followed by another: attempt n > 1 was scheduled because n - 1 failed.
    failedReconnectAttempts: attempts.filter((a) => a.attempt > 1).length,
    published: published.length,
    refused: published.length - accepted.length,
    expectedDeliveries: expected,
    delivered,
    late,
    latencyP99: percentile(latencies, 99),
    latencyMax: latencies.length ? Math.max(...latencies) : null,
    lostWhileConnected,
    lostAroundReconnect,
    lostByMember,
    duplicates,
    // Null if it never came back within the window.
    resumedAfterMs: resumedAt === null ? null : resumedAt - event,
    actionsSent: actions.length,
    actionsFailed: failed.length,
    actionFailures: failures,
    failedActions: failed,
    // How late the harness's event loops ran: time it may add to the figures.
    harnessLagP99: snapshot.lagP99,
    harnessLagMax: snapshot.lagMax,
  };
}

/** The session of `member` that was open at `time`, if any. */
function sessionAt(member, time) {
  return member.sessions.find((s) => s.start <= time && (s.end === undefined || s.end >= time)) ?? null;
}

/** The p-th percentile of `values` (nearest rank), or null if empty. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
