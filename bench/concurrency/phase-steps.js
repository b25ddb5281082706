// Steps shared by the single-process and the cluster phases of the concurrency benchmark.
import { setTimeout as sleep } from 'node:timers/promises';
import { request, tail } from './children.js';

/** Echo requests in flight per load client while checking every connection. */
export const ECHO_WINDOW_PER_CLIENT = 500;

export async function echoAll(clients, remaining) {
  const timeoutMs = remaining(60_000);
  const replies = await Promise.all(
    clients.map((c) =>
      request(c, { type: 'echo', window: ECHO_WINDOW_PER_CLIENT, timeoutMs }, 'echoed', timeoutMs + 15_000),
    ),
  );
  return { ...total(replies), ms: Math.max(...replies.map((r) => r.ms)) };
}

/** Waits for the backends to see every connection of the phase closed, so the next starts clean. */
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

export function waitForMessage(proc, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.child.off('message', onMessage);
      reject(new Error(`${proc.name}: no "${type}" within ${timeoutMs} ms\n${tail(proc.stderr)}`));
    }, timeoutMs);
    const onMessage = (msg) => {
      if (msg?.type !== type) return;
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      resolve(msg);
    };
    proc.child.on('message', onMessage);
  });
}

/** Sums the numeric fields of client replies; error codes are merged. */
export function total(replies) {
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
  return sum;
}

export function split(n, parts) {
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));
}

export function rotate(list, by) {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}
