import type { Backend, Service, Session } from '../../plugin-sdk/index.js';
import { type KeySource, keyHash } from './key.js';
import { buildTable, type HashTable, type TableSettings } from './table.js';

export interface BalancerSettings extends TableSettings {
  key: KeySource;
  /** Bounded-load factor c (≥ 1), or 0 for none. */
  boundedLoad: number;
}

/** What the plugin provides (`service.use('consistent-hash')`), for tests and tools. */
export interface ConsistentHashApi {
  /** The backend a key hash maps to when every backend is a candidate and none is full. */
  lookup(hash: number): Backend | undefined;
  /** Table rebuilds since start. */
  rebuilds(): number;
}

/**
 * The consistent-hash balancer of one service. The table is built from the registry's `up`
 * backends with their effective weights; registry and weight hooks bump a version and schedule
 * one rebuild for the next turn of the event loop (a burst of changes costs one), and `select`
 * rebuilds first if it runs before that, so no session is placed by a stale table.
 */
export class ConsistentHash {
  #table: HashTable | null = null;
  #version = 0;
  #builtVersion = -1;
  #scheduled: NodeJS.Immediate | null = null;
  #rebuilds = 0;
  /** Candidate marks per table index: `mark[i] === epoch` while marking one candidate list. */
  #mark = new Uint32Array(0);
  #epoch = 0;
  #warnedSmall = false;

  constructor(
    private readonly service: Service,
    private readonly settings: BalancerSettings,
  ) {}

  /** Registry or weight change: rebuild soon (debounced), and before the next `select`. */
  readonly invalidate = (): void => {
    this.#version++;
    if (this.#scheduled === null) this.#scheduled = setImmediate(this.#rebuildScheduled);
  };

  readonly #rebuildScheduled = (): void => {
    this.#scheduled = null;
    if (this.#builtVersion !== this.#version) this.#rebuild();
  };

  stop(): void {
    if (this.#scheduled !== null) clearImmediate(this.#scheduled);
    this.#scheduled = null;
  }

  api(): ConsistentHashApi {
    return {
      lookup: (hash) => {
        const t = this.#current();
        return t.backends.length === 0 ? undefined : t.backends[t.owners[t.start(hash)]!];
      },
      rebuilds: () => this.#rebuilds,
    };
  }

  #current(): HashTable {
    if (this.#builtVersion !== this.#version || this.#table === null) this.#rebuild();
    return this.#table!;
  }

  #rebuild(): void {
    const up = this.service.backends.up;
    this.#builtVersion = this.#version;
    this.#table = buildTable(up, this.settings);
    this.#mark = new Uint32Array(up.length);
    this.#rebuilds++;
    const { algorithm, tableSize } = this.settings;
    if (algorithm === 'maglev' && up.length * 100 > tableSize && !this.#warnedSmall) {
      this.#warnedSmall = true;
      this.service.log.warn(
        { plugin: 'consistent-hash', backends: up.length, table_size: tableSize },
        'maglev table_size is below 100 x the backends: the spread gets uneven; use a larger prime',
      );
    }
  }

  /** The `select` tap. */
  readonly select = (candidates: Backend[], session: Session): Backend | undefined => {
    const t = this.#current();
    const hash = keyHash(session, this.settings.key);
    const { backends, owners } = t;
    const size = owners.length;
    if (backends.length === 0 || size === 0) return candidates[(hash >>> 0) % candidates.length];
    // The common case: no filter removed anyone, so every table entry may take the session.
    const all = candidates === t.source;
    const c = this.settings.boundedLoad;
    if (all && c === 0) return backends[owners[t.start(hash)]!];

    let epoch = 0;
    if (!all) {
      epoch = ++this.#epoch;
      if (epoch === 0xffffffff) {
        this.#mark.fill(0);
        this.#epoch = epoch = 1;
      }
      const mark = this.#mark;
      // Filters keep the order of `up`: walk both arrays, comparing references only.
      const { source, sourceIndex } = t;
      const m = candidates.length;
      let j = 0;
      for (let i = 0; i < source.length && j < m; i++)
        if (source[i] === candidates[j]) {
          mark[sourceIndex[i]!] = epoch;
          j++;
        }
      // Not an in-order subset (a filter reordered): look every candidate up instead.
      if (j < m)
        for (let k = 0; k < m; k++) {
          const i = t.indexOf.get(candidates[k]!);
          if (i !== undefined) mark[i] = epoch;
        }
    }
    // Bounded load: a backend takes the session while its load is under
    // ceil(c × (load of all candidates + 1) × its weight / their total weight).
    let scale = 0;
    if (c > 0) {
      let load = 0;
      let weight = 0;
      for (let k = 0; k < candidates.length; k++) {
        const b = candidates[k]!;
        load += b.active + b.peerActive;
        weight += b.effectiveWeight;
      }
      scale = (c * (load + 1)) / weight;
    }
    const mark = this.#mark;
    let slot = t.start(hash);
    for (let step = 0; step < size; step++) {
      const i = owners[slot]!;
      if (all || mark[i] === epoch) {
        const b = backends[i]!;
        if (c === 0 || b.active + b.peerActive < Math.ceil(scale * b.effectiveWeight)) return b;
      }
      if (++slot === size) slot = 0;
    }
    // No table entry is a candidate (cannot happen with a fresh table and a filtered `up`).
    return candidates[(hash >>> 0) % candidates.length];
  };
}
