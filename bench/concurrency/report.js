// The printed results of the concurrency benchmark: a Markdown table and the per-connection costs.
import { fmt, mib } from './format.js';

/**
 * A phase's result (phase.js); memory figures in KiB, each after a full GC.
 * @typedef {Record<string, any>} PhaseResult
 * @typedef {{ rss: number, v8?: NodeJS.MemoryUsage | null,
 *   spaces?: import('../lib/v8-stats.js').HeapSpaces }} Memory
 */

/**
 * Memory per held connection, KiB, each measurement after a full GC.
 * - `rss`: VmRSS growth from the idle proxy to the plateau, over the sessions held.
 * - `rssNoYoung`: the same without the growth of V8's young generation (new space), a one-off
 *   of tens of MiB that follows the allocation rate of the ramp, not the number of connections.
 * - `heap`: live JS heap (heapUsed) growth; `native`: RSS growth outside the V8 heap (Node's
 *   C++ socket wraps, libuv handles, malloc).
 * - `marg*`: growth from the halfway measurement to the plateau over the sessions added in
 *   between (the cost of one more connection), young generation excluded.
 */
/** @param {PhaseResult} r */
export function perConnection(r) {
  const n = Math.max(1, r.sessions);
  const m = Math.max(1, r.sessions - r.halfSessions);
  const heapUsed = (/** @type {Memory} */ at) => (at.v8?.heapUsed ?? 0) / 1024;
  const young = (/** @type {Memory} */ at) => (at.spaces?.new_space?.physical ?? 0) / 1024;
  const heapResident = (/** @type {Memory} */ at) =>
    Object.values(at.spaces ?? {}).reduce((sum, s) => sum + s.physical, 0) / 1024;
  const native = (/** @type {Memory} */ at) => at.rss - heapResident(at);
  return {
    rss: (r.plateau.rss - r.before.rss) / n,
    rssNoYoung: (r.plateau.rss - r.before.rss - (young(r.plateau) - young(r.before))) / n,
    heap: (heapUsed(r.plateau) - heapUsed(r.before)) / n,
    native: (native(r.plateau) - native(r.before)) / n,
    /** MiB */
    youngGrowth: (young(r.plateau) - young(r.before)) / 1024,
    rssAfterEcho: (r.afterEcho.rss - r.before.rss) / n,
    margRssNoYoung: (r.plateau.rss - r.half.rss - (young(r.plateau) - young(r.half))) / m,
    margHeap: (heapUsed(r.plateau) - heapUsed(r.half)) / m,
  };
}

const kib = (/** @type {number} */ x) => x.toFixed(2);

/**
 * @param {(line: string) => void} say
 * @param {PhaseResult[]} results
 * @param {string} about  the Node the proxies ran on and the number of rounds, for every table
 */
export function printSummary(say, results, about) {
  say(`\nConnections held and refused (${about})\n`);
  say(
    '| phase | target | held (proxy sessions) | refused: client RST / proxy count | ramp | echo ok / failed |',
  );
  say('|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const refused =
      r.kind === 'switchyard'
        ? `${fmt(r.ramp.resets)} / ${fmt(r.counters?.overloaded ?? '?')}`
        : `${fmt(r.ramp.resets)} / -`;
    say(
      `| ${r.name} | ${fmt(r.target)} | ${fmt(r.settle.held)} (${fmt(r.sessions)}) | ${refused} | ` +
        `${(r.ramp.ms / 1000).toFixed(1)} s, ${fmt(r.ramp.rate)}/s | ${fmt(r.echo.ok)} / ${fmt(r.echo.failed)} |`,
    );
  }
  say(`\nMemory per connection (${about})\n`);
  say(
    '| phase | RSS MiB: idle → half → plateau → after echo | RSS KiB/conn | without young-gen growth | JS heap (live) | native | young gen growth MiB | marginal, no young gen (RSS / heap) |',
  );
  say('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const p = perConnection(r);
    say(
      `| ${r.name} | ${mib(r.before.rss)} → ${mib(r.half.rss)} → ${mib(r.plateau.rss)} → ${mib(r.afterEcho.rss)} | ` +
        `${kib(p.rss)} | ${kib(p.rssNoYoung)} | ${kib(p.heap)} | ${kib(p.native)} | ${p.youngGrowth.toFixed(1)} | ` +
        `${kib(p.margRssNoYoung)} / ${kib(p.margHeap)} |`,
    );
  }
  const sy = results.find((r) => r.name === 'switchyard');
  const naive = results.find((r) => r.kind === 'naive');
  if (sy && naive) {
    const a = perConnection(sy);
    const b = perConnection(naive);
    const ratio = (/** @type {number} */ x, /** @type {number} */ y) => `${(x / y).toFixed(2)}x`;
    say(
      `\nSwitchyard / naive, per connection: RSS ${ratio(a.rss, b.rss)}, without young-gen growth ${ratio(a.rssNoYoung, b.rssNoYoung)}, ` +
        `JS heap ${ratio(a.heap, b.heap)}`,
    );
  }
  for (const r of results.filter((x) => x.recover)) {
    const c = r.finalCounters ?? {};
    say(
      `\n${r.name}: session budget ${fmt(r.limit)}; ${fmt(r.ramp.resets)} connections reset at the client, ` +
        `proxy counted ${fmt(r.counters?.overloaded)} overloaded (runtime.capacity.refused ${fmt(r.capacity?.refused)}); ` +
        `accepted ${fmt(r.counters?.accepted)}, established ${fmt(r.counters?.established)}; ` +
        `'session limit reached' logged ${fmt(r.limitLog?.lines ?? 0)} time(s), last with refusedSoFar ${fmt(r.limitLog?.refusedSoFar ?? '-')}.`,
    );
    const rec = r.recover;
    say(
      `  then ${fmt(rec.closed)} held connections closed and ${fmt(rec.opened)} new ones accepted ` +
        `(${fmt(rec.resets)} reset), sessions back at ${fmt(rec.sessions)}, echo on that client ${fmt(rec.echoOk)} ok / ` +
        `${fmt(rec.echoFailed)} failed; final overloaded count ${fmt(c.overloaded)}; proxy ${r.proxyAlive ? 'alive' : 'DEAD'}.`,
    );
  }
}
