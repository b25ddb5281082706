import type { Backend } from './types.js';

/**
 * What differs in a service by where it runs: in one process, or as a cluster's primary or
 * worker (core/cluster/placement.ts builds those). The service itself knows nothing of
 * clusters; it asks its placement.
 */
export interface ServicePlacement {
  /** Binds its listeners at start. False in a cluster primary: its workers bind them. */
  readonly binds: boolean;
  /**
   * Caps each listener's `maxConnections` at the process's session budget too (cluster workers:
   * a full worker declines, and node:cluster's round-robin offers the connection to another).
   */
  readonly budgetOnListeners: boolean;
  /**
   * Closes a backend's sessions when its drain timed out, where they live (a cluster primary
   * asks its workers). Undefined: the service closes its own.
   */
  readonly closeDrained?: (service: string, backend: Backend) => void;
}

/** One process: binds, no budget on listeners, closes its own sessions. */
export const SINGLE_PROCESS: ServicePlacement = Object.freeze({ binds: true, budgetOnListeners: false });
