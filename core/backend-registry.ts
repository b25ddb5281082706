import { backendIdentity, formatAddress, parseAddress } from './address.js';
import {
  dialSpec,
  drainTimeoutOf,
  ORIGIN_API,
  type ReconcileResult,
  sameDialFields,
} from './backend-origin.js';
import type { AddOptions, BackendRegistry as RegistryContract, RemoveOptions } from './contract.js';
import { RegistryError } from './errors.js';
import type { ServiceHooks } from './hooks.js';
import type { Backend, BackendSpec } from './types.js';

/** Called by the registry to close a backend's remaining sessions when a drain times out. */
export type DrainCloser = (backend: Backend) => void;

/**
 * The live set of backends of one service. Mutations fire the registry hooks, so balancers,
 * pools and health checks follow changes made from config, the admin API or plugins. Plugins
 * see it as the `BackendRegistry` interface (core/contract.ts); `released` and `dispose` are the core's.
 * Backends are keyed by their identity (`backendIdentity`, core/address.ts): every way in —
 * config, API, state file, discovery — gets one backend per normalised address, and lookups
 * accept any spelling of it.
 */
export class BackendRegistry implements RegistryContract {
  readonly #byAddress = new Map<string, Backend>();
  /** Backends in state `up`, in insertion order. Replaced (never mutated) on change. */
  #up: Backend[] = [];
  /** Backends removed from the registry that still have sessions; revived if re-added. */
  readonly #departed = new Map<string, Backend>();
  readonly #drainTimers = new Map<Backend, NodeJS.Timeout>();
  /**
   * Per origin that hands whole lists (`config`, discovery sources): the last list, by
   * canonical address. `reconcile` applies what changed since, so what an operator did to a
   * backend (drain, weight) stands until the origin itself changes that field.
   */
  readonly #lists = new Map<string, Map<string, BackendSpec>>();
  /** Weight factors of modifier plugins (`setWeightFactor`), per backend, by source. */
  readonly #factors = new Map<Backend, Map<string, number>>();

  constructor(
    private readonly hooks: ServiceHooks,
    private readonly defaultDrainTimeout: number,
    private readonly closeSessions: DrainCloser,
    /** Extra checks of a spec by the service (e.g. `tls: true` needs a TLS plugin); returns a message. */
    private readonly checkSpec: (spec: BackendSpec) => string | undefined = () => undefined,
  ) {}

  /** Backends that take new sessions, before plugin filters. Do not mutate. */
  get up(): readonly Backend[] {
    return this.#up;
  }

  /** Every registered backend (up and draining), in insertion order. */
  list(): Backend[] {
    return [...this.#byAddress.values()];
  }

  get(address: string): Backend | undefined {
    return this.#byAddress.get(canonicalAddress(address));
  }

  get size(): number {
    return this.#byAddress.size;
  }

  /** Adds a backend; throws `RegistryError` (400 bad spec, 409 exists). */
  add(spec: BackendSpec, options: AddOptions = {}): Backend {
    const { address, parsed, weight } = this.#check(spec);
    const existing = this.#byAddress.get(address);
    if (existing !== undefined) {
      const spelt = spec.address === address ? '' : ` (${JSON.stringify(spec.address)} is the same address)`;
      throw new RegistryError(
        'SWITCHYARD_E_BACKEND_EXISTS',
        `backend ${address} already exists${spelt}`,
        existing,
      );
    }
    spec = dialSpec(spec);
    const origin = options.origin ?? ORIGIN_API;

    let backend = this.#departed.get(address);
    if (backend) {
      // Same address back while old sessions still run: keep one object so `active` stays exact.
      this.#departed.delete(address);
      this.#cancelDrain(backend);
      backend.weight = weight;
      setEffective(backend, weight);
      backend.spec = { ...spec, address };
      backend.state = 'up';
      backend.origin = origin;
    } else {
      backend = {
        address,
        host: parsed.host,
        port: parsed.port,
        weight,
        effectiveWeight: weight,
        state: 'up',
        spec: { ...spec, address },
        origin,
        active: 0,
        total: 0,
        connectFailures: 0,
        bytesIn: 0,
        bytesOut: 0,
        openBytesIn: 0,
        openBytesOut: 0,
        status: {},
        peerActive: 0,
        peerStatus: {},
      };
    }
    this.#byAddress.set(address, backend);
    this.#rebuildUp();
    this.hooks.backendAdded.call(backend);
    return backend;
  }

  /**
   * Removes a backend: no new sessions; existing sessions finish, or are closed once the drain
   * timeout passes. Throws `RegistryError` 404 when unknown.
   */
  remove(address: string, options: RemoveOptions = {}): Backend {
    const backend = this.#require(address);
    this.#byAddress.delete(backend.address);
    backend.state = 'removed';
    // Modifiers start over if it comes back (slow-start ramps it again).
    if (this.#factors.delete(backend)) setEffective(backend, backend.weight);
    this.#rebuildUp();
    if (backend.active > 0) {
      this.#departed.set(backend.address, backend);
      this.#scheduleDrain(backend, options.drainTimeout ?? this.defaultDrainTimeout);
    }
    this.hooks.backendRemoved.call(backend);
    return backend;
  }

  /** Sets the weight (1..256). */
  setWeight(address: string, weight: number): Backend {
    if (!Number.isInteger(weight) || weight < 1 || weight > 256)
      throw new RegistryError('SWITCHYARD_E_BACKEND_INVALID', 'weight must be an integer from 1 to 256');
    const backend = this.#require(address);
    if (backend.weight !== weight) {
      backend.weight = weight;
      const reweighed = this.#reweigh(backend);
      this.#rebuildUp();
      this.hooks.backendChanged.call(backend);
      if (reweighed) this.hooks.backendWeight.call(backend);
    }
    return backend;
  }

  /**
   * A modifier plugin scales a backend's share: `effectiveWeight` becomes `weight` times the
   * product of every source's factor. `factor` is in (0, 1]; 1 withdraws the source's factor.
   * Fires `backendWeight` when `effectiveWeight` changed. Not per session: a ramp step at most.
   * A backend that leaves the registry loses its factors and takes none until it is re-added.
   */
  setWeightFactor(backend: Backend, source: string, factor: number): void {
    if (!(factor > 0 && factor <= 1))
      throw new RegistryError(
        'SWITCHYARD_E_BACKEND_INVALID',
        `weight factor of ${source} for ${backend.address} must be in (0, 1], got ${factor}`,
      );
    if (backend.state === 'removed') return; // it takes no sessions; a re-added one starts afresh
    let factors = this.#factors.get(backend);
    if (factor === 1) {
      if (factors === undefined || !factors.delete(source)) return;
      if (factors.size === 0) this.#factors.delete(backend);
    } else {
      if (factors === undefined) {
        factors = new Map();
        this.#factors.set(backend, factors);
      }
      if (factors.get(source) === factor) return;
      factors.set(source, factor);
    }
    if (this.#reweigh(backend)) this.hooks.backendWeight.call(backend);
  }

  /** The factor `source` set on `backend` (1 when none). */
  weightFactor(backend: Backend, source: string): number {
    return this.#factors.get(backend)?.get(source) ?? 1;
  }

  /** Recomputes `effectiveWeight`; returns whether it changed. */
  #reweigh(backend: Backend): boolean {
    let effective = backend.weight;
    const factors = this.#factors.get(backend);
    if (factors !== undefined) for (const f of factors.values()) effective *= f;
    if (effective === backend.effectiveWeight) return false;
    setEffective(backend, effective);
    return true;
  }

  /**
   * Drain (`true`): the backend stays registered but takes no new sessions; existing sessions
   * are closed after `drainTimeout` if given. Undrain (`false`): it takes sessions again.
   */
  setDraining(address: string, draining: boolean, options: RemoveOptions = {}): Backend {
    const backend = this.#require(address);
    const next = draining ? 'draining' : 'up';
    if (backend.state === next) return backend;
    backend.state = next;
    this.#cancelDrain(backend);
    if (draining && options.drainTimeout !== undefined) this.#scheduleDrain(backend, options.drainTimeout);
    this.#rebuildUp();
    this.hooks.backendChanged.call(backend);
    return backend;
  }

  /**
   * Makes the backends of `origin` equal to `specs` (a discovery source's whole list, or the
   * config file's on reload): adds the new, removes the gone (their sessions drain for the
   * service's `drain_timeout`, or the spec's `drain_timeout`), and applies in place what changed
   * since the origin's previous list (weight, `draining`, TLS and other fields), so the same
   * Backend object — counters, sessions — stays for an address that stays. Backends of other
   * origins are never touched: an address another origin owns is a conflict (its owner keeps
   * it; this origin takes it over in place once the owner lets go). Bad entries are skipped and
   * reported; they never stop the rest.
   */
  reconcile(origin: string, specs: readonly BackendSpec[]): ReconcileResult {
    const result: ReconcileResult = { added: [], removed: [], updated: [], conflicts: [], invalid: [] };
    const previous = this.#lists.get(origin) ?? new Map<string, BackendSpec>();
    const next = new Map<string, BackendSpec>();
    for (const spec of specs) {
      try {
        const { address } = this.#check(spec);
        if (next.has(address)) throw new Error(`backend ${address} is listed twice`);
        next.set(address, { ...spec, address });
      } catch (err) {
        result.invalid.push({ address: String(spec?.address), error: (err as Error).message });
      }
    }
    this.#lists.set(origin, next);

    for (const [address, old] of previous) {
      if (next.has(address)) continue;
      const backend = this.#byAddress.get(address);
      if (backend === undefined || backend.origin !== origin) continue;
      const heir = this.#claimant(address, origin);
      if (heir !== undefined) this.#transfer(backend, heir.origin, heir.spec);
      else this.remove(address, { drainTimeout: drainTimeoutOf(old) });
      result.removed.push(address);
    }
    for (const [address, spec] of next) {
      const backend = this.#byAddress.get(address);
      const old = previous.get(address);
      if (backend === undefined) {
        // Listed before but gone: removed by an operator; it comes back when the origin lists it anew.
        if (old !== undefined) continue;
        this.add(spec, { origin });
        if (spec.draining === true) this.setDraining(address, true);
        result.added.push(address);
      } else if (backend.origin !== origin) {
        if (old === undefined) result.conflicts.push({ address, owner: backend.origin });
      } else if (this.#update(backend, old, spec)) {
        result.updated.push(address);
      }
    }
    return result;
  }

  /**
   * Records `specs` as the last list of `origin` without applying it (the service does this at
   * start for the config file's list, whose backends it adds itself), so the next `reconcile`
   * of that origin applies only what changed since.
   */
  remember(origin: string, specs: readonly BackendSpec[]): void {
    const list = new Map<string, BackendSpec>();
    for (const spec of specs) {
      const parsed = parseAddress(spec.address);
      if (typeof parsed === 'string') continue;
      const address = formatAddress(parsed.host, parsed.port);
      list.set(address, { ...spec, address });
    }
    this.#lists.set(origin, list);
  }

  /** The core calls this when a session leaves a backend. */
  released(backend: Backend): void {
    if (backend.active === 0 && backend.state === 'removed') {
      this.#departed.delete(backend.address);
      this.#cancelDrain(backend);
    }
  }

  /** Stops drain timers (service stop). */
  dispose(): void {
    for (const timer of this.#drainTimers.values()) clearTimeout(timer);
    this.#drainTimers.clear();
  }

  /** Validates a spec; returns its canonical address and weight, or throws `RegistryError` 400. */
  #check(spec: BackendSpec): { address: string; parsed: { host: string; port: number }; weight: number } {
    if (typeof spec !== 'object' || spec === null || typeof spec.address !== 'string')
      throw new RegistryError('SWITCHYARD_E_BACKEND_INVALID', 'backend spec needs an "address" string');
    const parsed = parseAddress(spec.address);
    if (typeof parsed === 'string')
      throw new RegistryError('SWITCHYARD_E_BACKEND_INVALID', `backend address: ${parsed}`);
    const weight = spec.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 1 || weight > 256)
      throw new RegistryError(
        'SWITCHYARD_E_BACKEND_INVALID',
        'backend weight must be an integer from 1 to 256',
      );
    const problem = this.checkSpec(spec);
    if (problem !== undefined) throw new RegistryError('SWITCHYARD_E_BACKEND_INVALID', problem);
    return { address: formatAddress(parsed.host, parsed.port), parsed, weight };
  }

  /** Another origin whose last list names `address` (the oldest list first), to hand it to. */
  #claimant(address: string, except: string): { origin: string; spec: BackendSpec } | undefined {
    for (const [origin, list] of this.#lists) {
      if (origin === except) continue;
      const spec = list.get(address);
      if (spec !== undefined) return { origin, spec };
    }
    return undefined;
  }

  /** Hands a backend to another origin in place (no drain): its spec and weight become that origin's. */
  #transfer(backend: Backend, origin: string, spec: BackendSpec): void {
    backend.origin = origin;
    // The origin changed even when nothing else did: a cluster primary's snapshot carries it.
    if (!this.#update(backend, undefined, spec)) this.hooks.backendChanged.call(backend);
  }

  /**
   * Applies to `backend` what changed from `old` (the origin's previous spec; undefined: all of
   * `spec`). Returns whether anything changed; fires `backendChanged` once when it did.
   */
  #update(backend: Backend, old: BackendSpec | undefined, spec: BackendSpec): boolean {
    let changed = false;
    let reweighed = false;
    const weight = spec.weight ?? 1;
    if ((old === undefined || (old.weight ?? 1) !== weight) && backend.weight !== weight) {
      backend.weight = weight;
      reweighed = this.#reweigh(backend);
      changed = true;
    }
    if (!sameDialFields(backend.spec, spec) && (old === undefined || !sameDialFields(old, spec))) {
      // A new object: plugins that cache per spec (tls-upstream) notice it and rebuild.
      backend.spec = { ...dialSpec(spec), address: backend.address };
      changed = true;
    }
    const draining = spec.draining === true;
    if (
      (old === undefined || (old.draining === true) !== draining) &&
      (backend.state === 'draining') !== draining
    ) {
      const timeout = drainTimeoutOf(spec);
      // setDraining fires backendChanged itself.
      if (changed) this.#rebuildUp();
      this.setDraining(backend.address, draining, timeout === undefined ? {} : { drainTimeout: timeout });
      if (reweighed) this.hooks.backendWeight.call(backend);
      return true;
    }
    if (changed) {
      this.#rebuildUp();
      this.hooks.backendChanged.call(backend);
      if (reweighed) this.hooks.backendWeight.call(backend);
    }
    return changed;
  }

  #require(address: string): Backend {
    const canonical = canonicalAddress(address);
    if (canonical.startsWith('invalid:'))
      throw new RegistryError('SWITCHYARD_E_BACKEND_INVALID', `backend address: ${canonical.slice(8)}`);
    const backend = this.#byAddress.get(canonical);
    if (!backend) throw new RegistryError('SWITCHYARD_E_BACKEND_NOT_FOUND', `no backend ${canonical}`);
    return backend;
  }

  #rebuildUp(): void {
    const up: Backend[] = [];
    for (const b of this.#byAddress.values()) if (b.state === 'up') up.push(b);
    this.#up = up;
  }

  #scheduleDrain(backend: Backend, timeout: number): void {
    this.#cancelDrain(backend);
    if (backend.active === 0) return;
    if (timeout <= 0) {
      this.closeSessions(backend);
      return;
    }
    const timer = setTimeout(() => {
      this.#drainTimers.delete(backend);
      this.closeSessions(backend);
    }, timeout);
    timer.unref();
    this.#drainTimers.set(backend, timer);
  }

  #cancelDrain(backend: Backend): void {
    const timer = this.#drainTimers.get(backend);
    if (timer) {
      clearTimeout(timer);
      this.#drainTimers.delete(backend);
    }
  }
}

/** `effectiveWeight` is read-only to plugins; the registry alone writes it. */
function setEffective(backend: Backend, value: number): void {
  (backend as { effectiveWeight: number }).effectiveWeight = value;
}

function canonicalAddress(address: string): string {
  const identity = backendIdentity(address);
  return 'error' in identity ? `invalid:${identity.error}` : identity.address;
}
