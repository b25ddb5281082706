import { type Backend, CLOSE_REASONS, type Service, type Session } from '../../plugin-sdk/index.js';

/**
 * Rejection reasons are chosen by plugins; past this many distinct values per service the
 * rest are counted as `other`, so a misbehaving plugin cannot blow up the series count.
 */
export const MAX_REJECTION_REASONS = 32;

/** Connect-time histogram of one backend: counts per bucket (the last one is +Inf), sum, count. */
export class ConnectTimes {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/** What the metrics plugin counts itself, per backend (the core counts the rest). */
export interface BackendStats {
  readonly connectTimes: ConnectTimes;
  /** Close reasons of sessions that were piped to this backend. */
  readonly closed: Record<string, number>;
}

/** What the metrics plugin counts itself, per service. */
export interface ServiceStats {
  /** Close reasons of sessions that never reached a backend (refused, no backend, connect failed). */
  readonly closedUnconnected: Record<string, number>;
  /** Rejected sessions by the rejecting plugin's reason (`Rejection.reason`). */
  readonly rejections: Map<string, number>;
  readonly backends: WeakMap<Backend, BackendStats>;
}

/** A count of 0 for every close reason. */
export function zeroReasons(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const reason of CLOSE_REASONS) counts[reason] = 0;
  return counts;
}

/**
 * Taps the per-session hooks of one service. Per session this costs one WeakMap lookup and a
 * few number bumps in `established` and in `closed` — no allocation.
 */
export function trackSessions(service: Service, bounds: readonly number[]): ServiceStats {
  const stats: ServiceStats = {
    closedUnconnected: zeroReasons(),
    rejections: new Map(),
    backends: new WeakMap(),
  };
  const backendStats = (backend: Backend): BackendStats => {
    let s = stats.backends.get(backend);
    if (s === undefined) {
      s = { connectTimes: new ConnectTimes(bounds), closed: zeroReasons() };
      stats.backends.set(backend, s);
    }
    return s;
  };
  // Created when a backend joins so its series exist at 0 before its first session.
  service.hooks.backendAdded.tap('metrics', (backend) => {
    backendStats(backend);
  });
  service.hooks.established.tap('metrics', (session: Session) => {
    backendStats(session.backend!).connectTimes.observe((session.connectedAt - session.startedAt) / 1000);
  });
  service.hooks.closed.tap('metrics', (session: Session) => {
    // A session a route plugin sent to another service's pool is counted there, with its backend.
    if (session.pool !== service) return;
    const reason = session.closeReason ?? 'client-closed';
    const counts =
      session.connectedAt > 0 && session.backend !== null
        ? backendStats(session.backend).closed
        : stats.closedUnconnected;
    counts[reason] = (counts[reason] ?? 0) + 1;
    if (reason === 'rejected') {
      let label = session.closeDetail ?? 'unknown';
      const rejections = stats.rejections;
      if (!rejections.has(label) && rejections.size >= MAX_REJECTION_REASONS) label = 'other';
      rejections.set(label, (rejections.get(label) ?? 0) + 1);
    }
  });
  return stats;
}
