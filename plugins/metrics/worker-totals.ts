import type { Backend, ClusterBridge, Service } from '../../plugin-sdk/index.js';
import {
  type BackendStats,
  ConnectTimes,
  MAX_REJECTION_REASONS,
  type ServiceStats,
  zeroReasons,
} from './session-stats.js';
import { type BackendReport, SESSION_STATS_TOPIC, type WorkerReport } from './worker-report.js';

/** The workers' per-session numbers of one service, summed, by backend address. */
interface ServiceTotals {
  readonly closedUnconnected: Record<string, number>;
  readonly rejections: Map<string, number>;
  readonly backends: Map<string, BackendStats>;
}

type Totals = Map<string, ServiceTotals>;

export interface WorkerTotalsOptions {
  /** The primary's `connect_time_buckets`: what the summed histogram is rendered with. */
  bounds: readonly number[];
  /** Called once per refresh with the number of live workers that did not answer in time. */
  onMissing?: (missing: number) => void;
  /** Whether a process still exists; injectable for tests. */
  isAlive?: (pid: number) => boolean;
}

/**
 * The cluster primary's view of the per-session numbers (connect times, close and rejection
 * reasons), which only workers see. Each scrape asks every worker for its absolute numbers
 * and sums: the last answer of every worker ever seen, so a worker that is slow to answer
 * counts with its previous numbers instead of vanishing, and counters never go down. Answers
 * of workers that no longer exist are folded into a retired base (they can never answer again:
 * node:cluster never reuses a worker id), which keeps memory bounded across crashes and reloads.
 */
export class WorkerTotals {
  /** Last answer per worker, by `worker/pid`. */
  readonly #last = new Map<string, WorkerReport>();
  readonly #retired: Totals = new Map();
  #sum: Totals = new Map();
  /** Rejection reasons given a series of their own, per service; never evicted (monotonic series). */
  readonly #admitted = new Map<string, Set<string>>();
  readonly #bucketIndex = new Map<string, readonly number[]>();
  #inFlight: Promise<void> | undefined;
  readonly #bounds: readonly number[];
  readonly #onMissing: (missing: number) => void;
  readonly #isAlive: (pid: number) => boolean;

  constructor(options: WorkerTotalsOptions) {
    this.#bounds = options.bounds;
    this.#onMissing = options.onMissing ?? (() => {});
    this.#isAlive = options.isAlive ?? pidAlive;
  }

  /** Asks every worker (waiting at most `timeout` ms) and recomputes the sums; concurrent scrapes share one request. */
  refresh(bridge: ClusterBridge, timeout: number): Promise<void> {
    this.#inFlight ??= this.#refresh(bridge, timeout).finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /** Workers whose last answer is kept on its own (live ones, and dead ones until their pid is gone). */
  get tracked(): number {
    return this.#last.size;
  }

  /** The sums for one of the primary's services, keyed by its own Backend objects for the collectors. */
  statsOf(service: Service): ServiceStats {
    const totals = this.#sum.get(service.name);
    const backends = new WeakMap<Backend, BackendStats>();
    if (totals !== undefined) {
      for (const backend of service.backends.list()) {
        const b = totals.backends.get(backend.address);
        if (b !== undefined) backends.set(backend, b);
      }
    }
    return {
      closedUnconnected: totals?.closedUnconnected ?? zeroReasons(),
      rejections: totals?.rejections ?? new Map(),
      backends,
    };
  }

  async #refresh(bridge: ClusterBridge, timeout: number): Promise<void> {
    const answers = await bridge.request<unknown>(SESSION_STATS_TOPIC, null, { sticky: false, timeout });
    const answered = new Set<string>();
    for (const answer of answers) {
      if (!isWorkerReport(answer)) continue;
      const key = `${answer.worker}/${answer.pid}`;
      answered.add(key);
      this.#last.set(key, answer);
    }
    for (const [key, report] of this.#last) {
      if (answered.has(key) || this.#isAlive(report.pid)) continue;
      this.#add(this.#retired, report);
      this.#last.delete(key);
    }
    const sum = cloneTotals(this.#retired, this.#bounds);
    for (const report of this.#last.values()) this.#add(sum, report);
    this.#sum = sum;
    // Counted after the request: a worker forked meanwhile makes this over-count by one at most.
    const missing = bridge.workerCount() - answers.length;
    if (missing > 0) this.#onMissing(missing);
  }

  #add(target: Totals, report: WorkerReport): void {
    const index = this.#indexFor(report.bounds);
    for (const [name, s] of Object.entries(report.services)) {
      let t = target.get(name);
      if (t === undefined) {
        t = { closedUnconnected: zeroReasons(), rejections: new Map(), backends: new Map() };
        target.set(name, t);
      }
      addCounts(t.closedUnconnected, s.closedUnconnected);
      let admitted = this.#admitted.get(name);
      if (admitted === undefined) {
        admitted = new Set();
        this.#admitted.set(name, admitted);
      }
      for (const [reason, n] of Object.entries(s.rejections ?? {})) {
        let label = reason;
        if (label !== 'other' && !admitted.has(label)) {
          if (admitted.size < MAX_REJECTION_REASONS) admitted.add(label);
          else label = 'other';
        }
        t.rejections.set(label, (t.rejections.get(label) ?? 0) + count(n));
      }
      for (const [address, b] of Object.entries(s.backends ?? {})) {
        let into = t.backends.get(address);
        if (into === undefined) {
          into = { connectTimes: new ConnectTimes(this.#bounds), closed: {} };
          t.backends.set(address, into);
        }
        addBackend(into, b, index);
      }
    }
  }

  /**
   * Where each bucket of a worker's histogram goes in the primary's. The same bounds map one
   * to one. Other bounds (new workers after a reload that changed `connect_time_buckets`; the
   * primary keeps its options until restart) go to the first bucket whose bound is at least
   * theirs: `_count` and `_sum` stay exact, a bucket may under-count (quantiles read high).
   */
  #indexFor(bounds: readonly number[]): readonly number[] {
    const key = bounds.join(',');
    const known = this.#bucketIndex.get(key);
    if (known !== undefined) return known;
    const mine = this.#bounds;
    const index = bounds.map((bound) => {
      const j = mine.findIndex((b) => b >= bound);
      return j < 0 ? mine.length : j;
    });
    index.push(mine.length); // +Inf
    this.#bucketIndex.set(key, index);
    return index;
  }
}

function addBackend(into: BackendStats, b: BackendReport, index: readonly number[]): void {
  const h = into.connectTimes;
  const counts = Array.isArray(b.counts) ? b.counts : [];
  const n = Math.min(counts.length, index.length);
  for (let i = 0; i < n; i++) h.counts[index[i]!]! += count(counts[i]);
  h.sum += count(b.sum);
  h.count += count(b.count);
  addCounts(into.closed, b.closed);
}

function addCounts(into: Record<string, number>, from: Record<string, number> | undefined): void {
  if (from === undefined) return;
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + count(n);
}

function cloneTotals(from: Totals, bounds: readonly number[]): Totals {
  const to: Totals = new Map();
  for (const [name, t] of from) {
    const backends = new Map<string, BackendStats>();
    for (const [address, b] of t.backends) {
      const connectTimes = new ConnectTimes(bounds);
      connectTimes.counts.set(b.connectTimes.counts);
      connectTimes.sum = b.connectTimes.sum;
      connectTimes.count = b.connectTimes.count;
      backends.set(address, { connectTimes, closed: { ...b.closed } });
    }
    to.set(name, {
      closedUnconnected: { ...t.closedUnconnected },
      rejections: new Map(t.rejections),
      backends,
    });
  }
  return to;
}

/** A count from IPC: anything but a finite non-negative number counts as 0. */
function count(n: unknown): number {
  return typeof n === 'number' && n > 0 && Number.isFinite(n) ? n : 0;
}

function isWorkerReport(value: unknown): value is WorkerReport {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<WorkerReport>;
  return (
    typeof r.worker === 'number' &&
    typeof r.pid === 'number' &&
    Array.isArray(r.bounds) &&
    typeof r.services === 'object' &&
    r.services !== null
  );
}

/** `kill(pid, 0)`: ESRCH means gone; EPERM means the pid exists (reused by someone else: keep waiting). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
