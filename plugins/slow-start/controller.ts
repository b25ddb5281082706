import { type Backend, RESTRICTED_STATUSES, type Service } from '../../plugin-sdk/index.js';
import type { SlowStartOptions } from './options.js';
import { rampFactor, rampStep } from './ramp.js';

export const NAME = 'slow-start';

interface Tracked {
  /** Another plugin's status restricts it (health down, breaker open or half-open). */
  restricted: boolean;
  /** In state `draining` (takes no new sessions). */
  draining: boolean;
  /** `Date.now()` when the current ramp began; null when not ramping. */
  since: number | null;
}

/** One ramping backend, as the provided API reports it. */
export interface RampInfo {
  address: string;
  /** The share of its weight it gets now (min_weight_percent/100 .. 1). */
  factor: number;
  since: number;
  /** `Date.now()` when it reaches its full weight. */
  until: number;
}

/** What the plugin provides (`service.use('slow-start')`). */
export interface SlowStartApi {
  ramps(): RampInfo[];
}

/**
 * Ramps the effective weight of backends that join or come back. A backend ramps when it is
 * added while the service runs, when it leaves `draining`, and when the last restricting
 * status of another plugin on it clears (health check `down` → `up`, breaker `open` /
 * `half-open` → `closed`). It stops ramping (full weight, status withdrawn) when it is
 * restricted again, drained or removed, and starts over when it comes back. Backends present
 * when the service starts (config, state file) do not ramp: nothing was serving without them.
 * One timer ticks while anything ramps; nothing here runs per session.
 */
export class SlowStart implements SlowStartApi {
  readonly #tracked = new Map<Backend, Tracked>();
  readonly #minFactor: number;
  readonly #step: number;
  #timer: NodeJS.Timeout | null = null;
  #ramping = 0;
  #stopped = false;
  /** Set once the configured backends are in (they start at full weight); later ones ramp. */
  #started = false;

  constructor(
    private readonly service: Service,
    private readonly options: SlowStartOptions,
  ) {
    this.#minFactor = options.min_weight_percent / 100;
    this.#step = rampStep(options.window);
  }

  /**
   * `start` hook. The core adds the configured backends right after the `start` taps, in the
   * same turn of the event loop, so the flag flips after them. A listening service counts as
   * started once it listens; a pool (no listener) from the next turn on — backends added from
   * then (admin API, discovery, reload) ramp.
   */
  start(): void {
    setImmediate(() => {
      this.#started = true;
    });
  }

  /** `backendAdded`. */
  readonly added = (backend: Backend): void => {
    const tracked: Tracked = { restricted: restrictedByOthers(backend), draining: false, since: null };
    this.#tracked.set(backend, tracked);
    // Before `started`: the service is starting and these are its configured backends.
    if (!tracked.restricted && (this.#started || this.service.addresses().length > 0))
      this.#begin(backend, tracked);
  };

  /** `backendRemoved`: the registry drops its weight factor; drop the status and the entry. */
  readonly removed = (backend: Backend): void => {
    const tracked = this.#tracked.get(backend);
    if (tracked === undefined) return;
    this.#end(backend, tracked);
    this.#tracked.delete(backend);
  };

  /** `backendChanged`: out of `draining` ramps; into it ends the ramp. */
  readonly changed = (backend: Backend): void => {
    const tracked = this.#tracked.get(backend);
    const draining = backend.state !== 'up';
    if (tracked === undefined || draining === tracked.draining) return; // a weight change
    tracked.draining = draining;
    if (draining) this.#end(backend, tracked);
    else if (!tracked.restricted) this.#begin(backend, tracked);
  };

  /** `backendStatus`: the last restricting status of another plugin cleared → ramp. */
  readonly status = (backend: Backend, source: string): void => {
    if (source === NAME) return;
    const tracked = this.#tracked.get(backend);
    if (tracked === undefined) return;
    const restricted = restrictedByOthers(backend);
    if (restricted === tracked.restricted) return;
    tracked.restricted = restricted;
    if (restricted) this.#end(backend, tracked);
    else if (!tracked.draining) this.#begin(backend, tracked);
  };

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  ramps(): RampInfo[] {
    const out: RampInfo[] = [];
    for (const [backend, t] of this.#tracked)
      if (t.since !== null)
        out.push({
          address: backend.address,
          factor: this.service.backends.weightFactor(backend, NAME),
          since: t.since,
          until: t.since + this.options.window,
        });
    return out;
  }

  #begin(backend: Backend, tracked: Tracked): void {
    if (this.#stopped) return;
    if (tracked.since === null) this.#ramping++;
    tracked.since = Date.now();
    this.service.backends.setWeightFactor(backend, NAME, this.#minFactor);
    this.service.setBackendStatus(backend, NAME, 'slow-start');
    if (this.#timer === null) {
      this.#timer = setInterval(this.#tick, this.#step);
      this.#timer.unref();
    }
  }

  #end(backend: Backend, tracked: Tracked): void {
    if (tracked.since === null) return;
    tracked.since = null;
    this.#ramping--;
    // A removed backend has lost its factors already; setting 1 is then a no-op.
    this.service.backends.setWeightFactor(backend, NAME, 1);
    this.service.clearBackendStatus(backend, NAME);
    if (this.#ramping === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  readonly #tick = (): void => {
    const now = Date.now();
    const { window, aggression } = this.options;
    for (const [backend, tracked] of this.#tracked) {
      if (tracked.since === null) continue;
      const factor = rampFactor(now - tracked.since, window, aggression, this.#minFactor);
      if (factor >= 1) this.#end(backend, tracked);
      else this.service.backends.setWeightFactor(backend, NAME, factor);
    }
  };
}

/** Whether a status of another plugin restricts the backend (no sessions, or only some). */
function restrictedByOthers(backend: Backend): boolean {
  for (const source in backend.status)
    if (source !== NAME && RESTRICTED_STATUSES.has(backend.status[source]!)) return true;
  return false;
}
