import { type Backend, NO_SESSION_STATUSES, type Service } from '../../plugin-sdk/index.js';

/** One event of the timeline: a backend's status or registry state changed. */
export interface TimelineEntry {
  /** Sequence number (increasing), so the page can tell what it has seen. */
  seq: number;
  /** `Date.now()` when it happened. */
  at: number;
  service: string;
  backend: string;
  /** The plugin whose status changed (`health-check`, `circuit-breaker`, ...) or `registry`. */
  source: string;
  /** The new status (`down`, `open`, `half-open`, `closed`, `slow-start`, `''` = withdrawn) or registry event. */
  status: string;
  /** The status before, when known. */
  previous: string | null;
  /** Why, when the plugin says: the failed check's error, the breaker's trip reason. */
  detail: string | null;
}

/** What the health-check and circuit-breaker plugins share; read when their status changes. */
interface HealthView {
  get?: (backend: Backend | string) => { lastError?: string | null } | undefined;
}
interface BreakerView {
  get?: (address: string) => { lastReason?: string | null; lastError?: string | null } | undefined;
}

/** Largest timeline (entries); each holds a few short strings (~200 bytes). */
export const MAX_TIMELINE = 10_000;

/**
 * The last `capacity` transitions of every backend, from the registry hooks that fire when a
 * plugin changes a status (`backendStatus`: health checks, breakers, slow start; in a cluster
 * primary also the merged statuses workers report) and when a backend is drained, undrained,
 * added or removed after start. Nothing here runs per session.
 */
export class Timeline {
  readonly #entries: TimelineEntry[] = [];
  #next = 0;
  #seq = 0;

  constructor(readonly capacity: number) {}

  /** Taps the registry hooks of one service. */
  track(service: Service): void {
    const previous = new WeakMap<Backend, Record<string, string>>();
    const remember = (backend: Backend) => previous.set(backend, { ...backend.status });
    service.hooks.backendStatus.tap('dashboard', (backend, source, status) => {
      const before = previous.get(backend)?.[source] ?? null;
      remember(backend);
      // The first verdict of a healthy backend (health checks starting, a breaker created) is no event.
      if (before === null && (status === 'up' || status === 'closed')) return;
      this.add(service, backend, source, status, before, detailOf(service, backend, source, status));
    });
    const states = new WeakMap<Backend, string>();
    // The service adds its config backends right after its start hook: those are no event.
    let started = false;
    service.hooks.start.tap('dashboard', () => {
      setImmediate(() => {
        started = true;
      });
    });
    service.hooks.backendAdded.tap('dashboard', (backend) => {
      states.set(backend, backend.state);
      remember(backend);
      if (started) this.add(service, backend, 'registry', 'added', null, null);
    });
    service.hooks.backendChanged.tap('dashboard', (backend) => {
      const before = states.get(backend) ?? null;
      if (before === backend.state) return; // a weight change
      states.set(backend, backend.state);
      this.add(service, backend, 'registry', backend.state, before, null);
    });
    service.hooks.backendRemoved.tap('dashboard', (backend) => {
      states.set(backend, 'removed');
      this.add(service, backend, 'registry', 'removed', null, null);
    });
  }

  add(
    service: Service,
    backend: Backend,
    source: string,
    status: string,
    previous: string | null,
    detail: string | null,
  ): void {
    const entry: TimelineEntry = {
      seq: ++this.#seq,
      at: Date.now(),
      service: service.name,
      backend: backend.address,
      source,
      status,
      previous,
      detail,
    };
    if (this.#entries.length < this.capacity) this.#entries.push(entry);
    else this.#entries[this.#next] = entry;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** Entries newest first. */
  list(): TimelineEntry[] {
    const n = this.#entries.length;
    const out: TimelineEntry[] = [];
    for (let i = 1; i <= n; i++) out.push(this.#entries[(this.#next - i + n) % n]!);
    return out;
  }
}

/** The reason a plugin gives for a restricting status, read from its shared API (guarded). */
function detailOf(service: Service, backend: Backend, source: string, status: string): string | null {
  if (!NO_SESSION_STATUSES.has(status)) return null;
  try {
    if (source === 'health-check')
      return service.use<HealthView>('health-check')?.get?.(backend)?.lastError ?? null;
    if (source === 'circuit-breaker') {
      const b = service.use<BreakerView>('circuit-breaker')?.get?.(backend.address);
      if (b === undefined) return service.runtime.role === 'primary' ? 'reported by a worker' : null;
      return [b.lastReason, b.lastError].filter(Boolean).join(': ') || null;
    }
  } catch {
    // another plugin's bug must not lose the event
  }
  return null;
}
