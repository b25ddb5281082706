import type { Backend, Session } from '../../plugin-sdk/index.js';
import type { BackendLimitSnapshot } from './api.js';
import type { LimitOverride } from './options.js';

/** `session.data` key of the slot whose connect the session has in progress. */
const PENDING = 'backend-limits.pending';

/** One backend's limits (Infinity when unlimited) and the connects it has in progress. */
interface Slot {
  maxConnections: number;
  maxPending: number;
  pending: number;
  overflows: number;
}

const asLimit = (n: unknown): number | undefined =>
  typeof n === 'number' && Number.isInteger(n) && n >= 0
    ? n === 0
      ? Number.POSITIVE_INFINITY
      : n
    : undefined;

/**
 * Limits per backend, resolved when a backend joins: the override for its address, else
 * `max_connections` / `max_pending` in its spec (backends added through the admin API), else
 * the plugin defaults. Active sessions are the core's `backend.active`; connects in progress
 * are counted here.
 */
export class LimitTable {
  readonly #slots = new Map<Backend, Slot>();

  constructor(
    private readonly defaults: { max_connections: number; max_pending: number },
    private readonly overrides: ReadonlyMap<string, LimitOverride>,
  ) {}

  add(backend: Backend): void {
    const o = this.overrides.get(backend.address);
    const spec = backend.spec as LimitOverride;
    const pick = (key: keyof LimitOverride) =>
      asLimit(o?.[key]) ?? asLimit(spec[key]) ?? asLimit(this.defaults[key])!;
    this.#slots.set(backend, {
      maxConnections: pick('max_connections'),
      maxPending: pick('max_pending'),
      pending: 0,
      overflows: 0,
    });
  }

  /** Connects still in progress keep a reference to their slot, so they end cleanly. */
  remove(backend: Backend): void {
    this.#slots.delete(backend);
  }

  isFull(backend: Backend): boolean {
    const s = this.#slots.get(backend);
    return s !== undefined && (backend.active >= s.maxConnections || s.pending >= s.maxPending);
  }

  /** Counts a session steered away from or refused by a full backend. */
  overflowed(backend: Backend): void {
    const s = this.#slots.get(backend);
    if (s !== undefined) s.overflows++;
  }

  /** Sessions the backends in `up` can still take (Infinity when one has no limit). */
  room(up: readonly Backend[]): number {
    let room = 0;
    for (const b of up) {
      const s = this.#slots.get(b);
      if (s === undefined) return Number.POSITIVE_INFINITY;
      room += Math.max(0, Math.min(s.maxConnections - b.active, s.maxPending - s.pending));
      if (room === Number.POSITIVE_INFINITY) return room;
    }
    return room;
  }

  /** A connect to `backend` starts (`connect` hook). */
  connecting(session: Session, backend: Backend): void {
    const s = this.#slots.get(backend);
    if (s === undefined) return;
    s.pending++;
    session.data[PENDING] = s;
  }

  /** The session's connect ended: established, failed or abandoned. Returns whether it was pending. */
  connectEnded(session: Session): boolean {
    const s = session.data[PENDING] as Slot | null | undefined;
    if (s === undefined || s === null) return false;
    session.data[PENDING] = null;
    if (s.pending > 0) s.pending--;
    return true;
  }

  snapshot(backend: Backend): BackendLimitSnapshot {
    const s = this.#slots.get(backend);
    const finite = (n: number | undefined) => (n === undefined || n === Number.POSITIVE_INFINITY ? 0 : n);
    return {
      backend: backend.address,
      active: backend.active,
      pending: s?.pending ?? 0,
      maxConnections: finite(s?.maxConnections),
      maxPending: finite(s?.maxPending),
      full: this.isFull(backend),
      overflows: s?.overflows ?? 0,
    };
  }
}
