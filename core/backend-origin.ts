import type { BackendSpec } from './types.js';

/** Origin of the backends listed in the config file (`Backend.origin`). */
export const ORIGIN_CONFIG = 'config';
/** Origin of backends added through the admin API, or by code calling `registry.add`. */
export const ORIGIN_API = 'api';

/** What `BackendRegistry.reconcile` (a discovery source's update) changed, by canonical address. */
export interface ReconcileResult {
  /** Added to the registry. */
  added: string[];
  /** Left the registry (draining their sessions), or handed to another origin that lists them too. */
  removed: string[];
  /** Weight, drain or other fields changed in place (the same Backend object). */
  updated: string[];
  /**
   * Listed by this origin for the first time while another origin owns the address: the owner
   * keeps it; this origin takes it over, in place, once the owner lets go of it.
   */
  conflicts: Array<{ address: string; owner: string }>;
  /** Entries refused (bad address or weight, `tls: true` without a TLS plugin), with why. */
  invalid: Array<{ address: string; error: string }>;
}

/**
 * Spec fields that are not the backend's dialling settings: a source's list may carry them to
 * say how the backend is run (`draining`) and how long its sessions may continue when it is
 * drained or removed (`drain_timeout`, ms). They never reach `backend.spec`.
 */
export const STATE_FIELDS = ['draining', 'drain_timeout'] as const;

/** The spec without the state fields: what `backend.spec` holds. */
export function dialSpec(spec: BackendSpec): BackendSpec {
  if (!('draining' in spec) && !('drain_timeout' in spec)) return spec;
  const { draining: _d, drain_timeout: _t, ...rest } = spec;
  return rest as BackendSpec;
}

/** `drain_timeout` of a source's spec, when it is a usable number of ms. */
export function drainTimeoutOf(spec: BackendSpec | undefined): number | undefined {
  const t = spec?.drain_timeout;
  return typeof t === 'number' && Number.isInteger(t) && t >= 0 && t <= 2_147_483_647 ? t : undefined;
}

/** True when two specs dial the same way (every field but address, weight and the state fields). */
export function sameDialFields(a: BackendSpec, b: BackendSpec): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    if (key === 'address' || key === 'weight' || key === 'draining' || key === 'drain_timeout') continue;
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) return false;
  }
  return true;
}
