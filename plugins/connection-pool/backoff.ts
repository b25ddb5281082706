/**
 * Exponential back-off with "equal jitter": the n-th consecutive failure waits between half and
 * all of min(max, base × 2^(n−1)). Jitter spreads reconnects of many proxies to one backend.
 */
export function backoffDelay(failures: number, base: number, max: number, random = Math.random): number {
  if (failures <= 0) return 0;
  const ceiling = Math.min(max, base * 2 ** Math.min(failures - 1, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * How long a warm socket must stay idle, not closed by the backend, to prove the backend keeps
 * connections: min(idle_ttl, backoff_max). Closed sooner by the backend (FIN, reset, or found
 * closed on borrow), it counts as a failure like a refused connect; a back-off probe that stays
 * idle this long ends the back-off.
 *
 * Why backoff_max: it is the slowest pace the back-off ever dials a failing backend. A socket
 * that lived at least that long cost no more dials than the back-off itself would allow, so a
 * server idle timeout of that length or more (HAProxy `timeout client` 30-60 s, Redis `timeout
 * 300`) is normal use, refilled at once; one shorter (Redis `timeout 1`, a backend closing on
 * accept) would otherwise make the pool dial as fast as the backend closes. Why idle_ttl: a
 * socket that lived idle_ttl is replaced by the pool anyway, so it cannot be asked to live longer.
 */
export function healthyIdleLife(idleTtl: number, backoffMax: number): number {
  return Math.min(idleTtl, backoffMax);
}

/** Floor of the connect deadline the pool sets itself when no connect timeout is configured. */
export const MIN_UNSET_CONNECT_TIMEOUT = 1000;

/**
 * Connect timeout of a pool dial: the configured one, or, when that is 0 (none: the OS gives up
 * on unanswered SYNs only after ~2 min on Linux, tcp_syn_retries 6), max(backoff_max, 1 s).
 * A pool dial has no client to give up on it, and while it hangs it holds its slot, or the
 * back-off probe's turn, so the backend would not be tried again until the OS gives up. The
 * back-off cap is the longest the pool waits between two tries of a failing backend, so a
 * connect that takes longer is given up and counted as a failure; 1 s at least, so a small
 * backoff_max does not fail the handshakes of a distant backend.
 */
export function poolConnectTimeout(configured: number, backoffMax: number): number {
  return configured > 0 ? configured : Math.max(backoffMax, MIN_UNSET_CONNECT_TIMEOUT);
}
