/**
 * The suite's results as a Markdown table (docs/failures.md copies it) and
 * as JSON.
 */

const ms = (value) => (value === null || value === undefined ? '–' : `${Math.round(value)} ms`);

/**
 * @param {Array<{ scenario: object, result: object, problems: string[], goalMet: boolean, note?: string }>} runs
 * @param {object} setup What ran: clients, rates, LB settings, command.
 */
export function markdown(runs, setup) {
  const lines = [
    `${setup.clients} clients (${setup.protocol === 'pusher' ? 'pusher-js' : 'JS client'}, Node) through HAProxy (${setup.lb}) to 3 edges, 2 routers, 3 NATS nodes; ` +
      `a message every ${setup.publishIntervalMs} ms to a user or a group` +
      (setup.protocol === 'pusher' ? ' (no actions: Pusher has none). ' : `, an action per client every ${setup.actionIntervalMs} ms. `) +
      `Binaries: ${setup.profile}. \`${setup.command}\``,
    '',
    '| failure | sessions closed (codes) | back p50 / p99 / max | delivery back after | latency p99 / max, late | lost while connected | lost around a reconnect | duplicates | publishes refused | actions failed / sent | harness lag p99 / max | goal | held |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const { scenario, result: r, problems, goalMet, note } of runs) {
    const codes = Object.entries(r.closeCodes).map(([code, n]) => `${n}×${code}`).join(', ');
    const lost = `${r.lostWhileConnected} / ${r.expectedDeliveries}`;
    lines.push(
      `| ${scenario.title}${note ? ` (${note})` : ''} | ${r.sessionsClosed}${codes ? ` (${codes})` : ''} | ` +
        `${ms(r.reconnectP50)} / ${ms(r.reconnectP99)} / ${ms(r.reconnectMax)} | ${ms(r.resumedAfterMs)} | ` +
        `${ms(r.latencyP99)} / ${ms(r.latencyMax)}, ${r.late} | ${lost} | ` +
        `${r.lostAroundReconnect} | ${r.duplicates} | ${r.refused} / ${r.published} | ` +
        `${r.actionsFailed} / ${r.actionsSent}${failureKinds(r)} | ${ms(r.harnessLagP99)} / ${ms(r.harnessLagMax)} | ` +
        `${scenario.goal.text}: ${goalMet ? 'met' : '**missed**'} | ` +
        `${problems.length ? `**no**: ${problems.join('; ')}` : 'yes'} |`,
    );
  }
  return lines.join('\n');
}

function failureKinds(result) {
  const kinds = Object.entries(result.actionFailures).map(([kind, n]) => `${n} ${kind}`);
  return kinds.length ? ` (${kinds.join(', ')})` : '';
}

/** The results without what only the analysis needs (per-message records). */
export function json(runs, setup) {
  return JSON.stringify(
    {
      setup,
      runs: runs.map(({ scenario, result, problems, goalMet, note }) => {
        const { closes, lostByMember, failedActions, ...figures } = result;
        return { scenario: scenario.name, note, goal: scenario.goal, goalMet, problems, ...figures };
      }),
    },
    null,
    2,
  );
}
