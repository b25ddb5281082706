// Steps shared by the single-process and the cluster phases of the concurrency benchmark.
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../lib/ipc.js';

/** Echo requests in flight per load client while checking every connection. */
export const ECHO_WINDOW_PER_CLIENT = 500;

/**
 * What load clients report (load-client.js), summed over clients.
 * @typedef {{ started: number, pending: number, connected: number, held: number, resets: number,
 *   closedByPeer: number, failed: number, errors: Record<string, number>, [key: string]: any }} ClientTotals
 */

/**
 * @typedef {(ms: number) => number} Remaining  `ms`, cut to what is left of the run; throws
 *   when too little is left
 * @typedef {import('../lib/procs.js').Proc} Proc
 */

/**
 * One byte through every held connection of every client, and its echo.
 * @param {Proc[]} clients
 * @param {Remaining} remaining
 */
export async function echoAll(clients, remaining) {
  const timeoutMs = remaining(60_000);
  const replies = await Promise.all(
    clients.map((c) =>
      request(c, { type: 'echo', window: ECHO_WINDOW_PER_CLIENT, timeoutMs }, 'echoed', timeoutMs + 15_000),
    ),
  );
  return { ...total(replies), ms: Math.max(...replies.map((r) => r.ms)) };
}

/**
 * Every client's stats, summed.
 * @param {Proc[]} clients
 * @param {number} timeoutMs
 */
export async function clientStats(clients, timeoutMs) {
  return total(await Promise.all(clients.map((c) => request(c, { type: 'stats' }, 'stats', timeoutMs))));
}

/**
 * Waits for the backends to see every connection of the phase closed, so the next starts clean.
 * @param {{ name: string, deadline: number, backends: import('./backends.js').Backends }} o
 */
export async function waitForBackendsIdle(o) {
  const deadline = Date.now() + Math.max(1000, Math.min(20_000, o.deadline - Date.now()));
  let n = -1;
  while (Date.now() < deadline) {
    n = await o.backends.connections();
    if (n === 0) return;
    await sleep(200);
  }
  throw new Error(`backends still hold ${n} connections after the phase ${o.name}`);
}

/**
 * Sums the numeric fields of client replies; error codes are merged.
 * @param {Record<string, any>[]} replies
 * @returns {ClientTotals}
 */
export function total(replies) {
  /** @type {Record<string, any>} */
  const sum = { errors: {} };
  for (const reply of replies) {
    for (const [key, value] of Object.entries(reply)) {
      if (typeof value === 'number') sum[key] = (sum[key] ?? 0) + value;
    }
    for (const [code, n] of Object.entries(reply.errors ?? {}))
      sum.errors[code] = (sum.errors[code] ?? 0) + n;
  }
  for (const key of ['started', 'connected', 'held', 'resets', 'failed', 'closedByPeer', 'pending'])
    sum[key] ??= 0;
  return /** @type {ClientTotals} */ (sum);
}

/**
 * `n` split into `parts` nearly equal whole parts.
 * @param {number} n
 * @param {number} parts
 */
export function split(n, parts) {
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));
}

/**
 * @template T
 * @param {T[]} list
 * @param {number} by
 */
export function rotate(list, by) {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/**
 * `ms` cut to what is left before `deadline`; throws when less than 2 s are left.
 * @param {string} name
 * @param {number} deadline
 * @returns {Remaining}
 */
export function remainingUntil(name, deadline) {
  return (ms) => {
    const left = deadline - Date.now();
    if (left < 2000) throw new Error(`${name}: out of time (the whole run is bounded)`);
    return Math.min(ms, left);
  };
}
