import { type Backend, hasNoSessionStatus } from '../../plugin-sdk/index.js';

/** A backend as the admin API reports it. */
export interface BackendJson {
  address: string;
  weight: number;
  state: Backend['state'];
  active: number;
  total: number;
  connectFailures: number;
  bytesIn: number;
  bytesOut: number;
  /** Plugin statuses, e.g. `{ "health-check": "down" }`. */
  status: Record<string, string>;
  tls: boolean;
  insecure_skip_verify: boolean;
  /** Who manages it: `config`, `api`, or a discovery source's name. */
  origin: string;
}

export function backendJson(b: Backend): BackendJson {
  return {
    address: b.address,
    weight: b.weight,
    state: b.state,
    active: b.active,
    total: b.total,
    connectFailures: b.connectFailures,
    bytesIn: b.bytesIn,
    bytesOut: b.bytesOut,
    status: { ...b.status },
    tls: b.spec.tls === true,
    insecure_skip_verify: b.spec.insecure_skip_verify === true,
    origin: b.origin,
  };
}

/**
 * Up, and no plugin status says "takes no sessions" (`NO_SESSION_STATUSES`: health check down,
 * breaker open, ejected). Used by `/readyz` to count usable backends without running the
 * candidate filters.
 */
export function isUsable(b: Backend): boolean {
  return b.state === 'up' && !hasNoSessionStatus(b);
}
