import type { Backend, Runtime, Service } from '../../plugin-sdk/index.js';

/** The series kept per service and per backend, in this order in each ring. */
export const SERIES = ['sessions', 'newSessions', 'bytesIn', 'bytesOut', 'connectMs'] as const;
export type SeriesName = (typeof SERIES)[number];

/** Bytes per sample slot: one float32 per series, plus the shared float64 timestamp. */
export const BYTES_PER_SLOT = SERIES.length * Float32Array.BYTES_PER_ELEMENT;
/** Largest number of samples a ring holds (one hour at one sample a second). */
export const MAX_SAMPLES = 3600;

/** What the metrics plugin shares (`runtime.use('metrics')`): its connect-time sums, read here. */
export interface ConnectTimeSource {
  connectTimes(service: Service): (backend: Backend) => { sum: number; count: number } | undefined;
  /** Cluster primary: brings the workers' sums up to date (one request in flight at most). */
  refresh?: () => Promise<void>;
}

/** The worst-case memory of the rings, in bytes, for `entities` tracked series sets. */
export function memoryBound(samples: number, entities: number): number {
  return samples * Float64Array.BYTES_PER_ELEMENT + entities * samples * BYTES_PER_SLOT;
}

/** Counter values at the previous sample, to turn totals into rates. */
interface Previous {
  sessions: number;
  bytesIn: number;
  bytesOut: number;
  ctSum: number;
  ctCount: number;
}

/** The rings of one service or one backend: `SERIES.length` float32 rings sharing the clock. */
class Rings {
  readonly values: Float32Array;
  prev: Previous | null = null;
  /** Sequence number of the last sample written; one that is not current means the entity left. */
  seenAt = -1;

  constructor(readonly capacity: number) {
    this.values = new Float32Array(capacity * SERIES.length).fill(Number.NaN);
  }

  write(slot: number, series: number, value: number): void {
    this.values[series * this.capacity + slot] = value;
  }

  read(slot: number, series: number): number {
    return this.values[series * this.capacity + slot]!;
  }
}

/** One sample of one entity before it becomes rates. */
interface Reading {
  sessions: number;
  /** Sessions started so far (accepted, or connected for a backend). */
  started: number;
  bytesIn: number;
  bytesOut: number;
  ctSum: number;
  ctCount: number;
}

/** History answer: the samples after `since`, oldest first; null where nothing was measured. */
export interface HistoryView {
  /** Sample interval, ms. */
  interval: number;
  /** Samples a ring holds. */
  capacity: number;
  /** Sample times (server `Date.now()`), oldest first. */
  t: number[];
  /** Whether connect times are measured (the metrics plugin runs). */
  connectTimes: boolean;
  /** Backends that got no history because `max_backends` was reached, since start. */
  untracked: number;
  services: Array<{
    name: string;
    series: Record<SeriesName, Array<number | null>>;
    backends: Array<{ address: string; series: Record<SeriesName, Array<number | null>> }>;
  }>;
}

/**
 * Fixed-size history of every service and backend, filled by one timer from counters the core
 * keeps (sessions, totals, bytes) and the metrics plugin's connect-time sums. Nothing runs per
 * session: each sample reads the registry, and in one process walks the session table once to
 * add the bytes of open sessions (the core adds them to the backend only when a session ends);
 * a cluster primary adds the workers' open bytes instead (`backend.openBytesIn/Out`).
 */
export class History {
  readonly times: Float64Array;
  readonly #services = new Map<string, Rings>();
  readonly #backends = new Map<string, Rings>();
  #seq = -1;
  #count = 0;
  #untracked = 0;
  #warned = false;

  constructor(
    readonly runtime: Runtime,
    readonly capacity: number,
    readonly interval: number,
    readonly maxBackends: number,
    private readonly connectTimes: () => ConnectTimeSource | undefined,
  ) {
    this.times = new Float64Array(capacity);
  }

  /** Takes one sample of every service and backend. */
  sample(now = Date.now()): void {
    this.#seq++;
    const slot = this.#seq % this.capacity;
    this.times[slot] = now;
    this.#count = Math.min(this.#count + 1, this.capacity);
    const prevTime = this.#count > 1 ? this.times[(slot - 1 + this.capacity) % this.capacity]! : now;
    const dt = (now - prevTime) / 1000;
    const ct = this.connectTimes();
    for (const service of this.runtime.services.values()) this.#sampleService(service, slot, dt, ct);
    for (const map of [this.#services, this.#backends])
      for (const [key, rings] of map) if (rings.seenAt !== this.#seq) map.delete(key);
  }

  #sampleService(service: Service, slot: number, dt: number, ct: ConnectTimeSource | undefined): void {
    // Bytes of open sessions per backend (only this process's: a cluster primary holds none,
    // it has the workers' reported as `backend.openBytesIn/Out`).
    const live = service.openBytes();
    const backends = new Set(service.backends.list());
    const connectTime = ct?.connectTimes(service);
    for (const b of live.keys()) backends.add(b);

    // The service's rates are the sums of its backends' (bytes, connect times) and its own counters.
    let bytesIn = 0;
    let bytesOut = 0;
    let ctSum = 0;
    let ctCount = 0;
    let rated = false;
    for (const backend of backends) {
      const key = `${service.name}\n${backend.address}`;
      let rings = this.#backends.get(key);
      if (rings === undefined) {
        if (this.#backends.size >= this.maxBackends) {
          this.#untracked++;
          this.#warnFull();
          continue;
        }
        rings = new Rings(this.capacity);
        this.#backends.set(key, rings);
      }
      const l = live.get(backend);
      const c = connectTime?.(backend);
      const reading: Reading = {
        sessions: backend.active,
        started: backend.total,
        // `openBytes*`: the workers' open sessions in a cluster primary (0 elsewhere).
        bytesIn: backend.bytesIn + backend.openBytesIn + (l?.in ?? 0),
        bytesOut: backend.bytesOut + backend.openBytesOut + (l?.out ?? 0),
        ctSum: c?.sum ?? 0,
        ctCount: c?.count ?? 0,
      };
      const d = this.#write(rings, slot, dt, reading);
      if (d !== null) {
        rated = true;
        bytesIn += d.bytesIn;
        bytesOut += d.bytesOut;
        ctSum += d.ctSum;
        ctCount += d.ctCount;
      }
    }

    let rings = this.#services.get(service.name);
    if (rings === undefined) {
      rings = new Rings(this.capacity);
      this.#services.set(service.name, rings);
    }
    rings.seenAt = this.#seq;
    const c = service.counters;
    const started = c.accepted + c.routedIn;
    const prev = rings.prev;
    rings.write(slot, 0, service.sessionCount);
    const ok = prev !== null && dt > 0 && started >= prev.sessions;
    rings.write(slot, 1, ok ? (started - prev.sessions) / dt : Number.NaN);
    rings.write(slot, 2, rated && dt > 0 ? bytesIn / dt : Number.NaN);
    rings.write(slot, 3, rated && dt > 0 ? bytesOut / dt : Number.NaN);
    rings.write(slot, 4, ctCount > 0 ? (ctSum / ctCount) * 1000 : Number.NaN);
    rings.prev = { sessions: started, bytesIn: 0, bytesOut: 0, ctSum: 0, ctCount: 0 };
  }

  /** Writes one backend's sample; returns its deltas, or null when there is no previous sample to compare. */
  #write(
    rings: Rings,
    slot: number,
    dt: number,
    r: Reading,
  ): { bytesIn: number; bytesOut: number; ctSum: number; ctCount: number } | null {
    rings.seenAt = this.#seq;
    const p = rings.prev;
    rings.prev = {
      sessions: r.started,
      bytesIn: r.bytesIn,
      bytesOut: r.bytesOut,
      ctSum: r.ctSum,
      ctCount: r.ctCount,
    };
    rings.write(slot, 0, r.sessions);
    // A counter that went back (the backend was re-created under the same address) starts over.
    if (p === null || dt <= 0 || r.started < p.sessions || r.bytesIn < p.bytesIn || r.bytesOut < p.bytesOut) {
      for (let s = 1; s < SERIES.length; s++) rings.write(slot, s, Number.NaN);
      return null;
    }
    const d = {
      bytesIn: r.bytesIn - p.bytesIn,
      bytesOut: r.bytesOut - p.bytesOut,
      ctSum: Math.max(0, r.ctSum - p.ctSum),
      ctCount: Math.max(0, r.ctCount - p.ctCount),
    };
    rings.write(slot, 1, (r.started - p.sessions) / dt);
    rings.write(slot, 2, d.bytesIn / dt);
    rings.write(slot, 3, d.bytesOut / dt);
    rings.write(slot, 4, d.ctCount > 0 ? (d.ctSum / d.ctCount) * 1000 : Number.NaN);
    return d;
  }

  #warnFull(): void {
    if (this.#warned) return;
    this.#warned = true;
    this.runtime.log.warn(
      { max_backends: this.maxBackends },
      'dashboard: history max_backends reached; further backends get no history',
    );
  }

  /** Backends with history now. */
  get trackedBackends(): number {
    return this.#backends.size;
  }

  /** The samples taken after `since` (all when 0), as JSON-ready arrays. */
  view(since = 0, connectTimes = false): HistoryView {
    const n = this.#count;
    const first = this.#seq - n + 1;
    const slots: number[] = [];
    for (let seq = first; seq <= this.#seq; seq++) {
      const slot = seq % this.capacity;
      if (this.times[slot]! > since) slots.push(slot);
    }
    const series = (rings: Rings | undefined) => {
      const out = {} as Record<SeriesName, Array<number | null>>;
      SERIES.forEach((name, s) => {
        out[name] = slots.map((slot) => {
          const v = rings?.read(slot, s) ?? Number.NaN;
          if (Number.isNaN(v)) return null;
          return name === 'connectMs' ? Math.round(v * 100) / 100 : Math.round(v * 10) / 10;
        });
      });
      return out;
    };
    const services: HistoryView['services'] = [];
    for (const service of this.runtime.services.values()) {
      const backends: HistoryView['services'][number]['backends'] = [];
      const prefix = `${service.name}\n`;
      for (const [key, rings] of this.#backends)
        if (key.startsWith(prefix))
          backends.push({ address: key.slice(prefix.length), series: series(rings) });
      services.push({ name: service.name, series: series(this.#services.get(service.name)), backends });
    }
    return {
      interval: this.interval,
      capacity: this.capacity,
      t: slots.map((slot) => this.times[slot]!),
      connectTimes,
      untracked: this.#untracked,
      services,
    };
  }
}
