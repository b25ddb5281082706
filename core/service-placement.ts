import type { Server } from 'node:net';
import type { Backend } from './types.js';

/** A socket received over IPC (Node's native TCP handle); see core/cluster/messages.ts. */
export type ListeningHandle = object;

/**
 * Where a service's listening sockets come from when they are not simply bound: a cluster
 * worker with `scheduling: reuseport` (core/cluster/worker-listeners.ts).
 */
export interface ListenSource {
  /** Sockets handed to this process for listener `index` of `service`, to listen on instead of binding. */
  take(service: string, index: number): Array<{ slot: number; handle: ListeningHandle }>;
  /** The port to bind (with SO_REUSEPORT) when nothing was handed over. */
  port(service: string, index: number): number;
  /** A socket this process bound: the cluster primary keeps a copy of it. */
  bound(service: string, index: number, server: Server): void;
}

/**
 * What differs in a service by where it runs: in one process, or as a cluster's primary or
 * worker (core/cluster/placement.ts builds those). The service itself knows nothing of
 * clusters; it asks its placement.
 */
export interface ServicePlacement {
  /** Binds its listeners at start. False in a cluster primary: its workers bind them. */
  readonly binds: boolean;
  /**
   * Connections arrive as handles another process accepted (a cluster worker with `scheduling:
   * rr`, fed by the primary's dispatcher through `Service.acceptHanded`): the listeners' servers
   * are built but never listen.
   */
  readonly handedConnections?: boolean;
  /** Listening sockets to take over, or the port to bind with SO_REUSEPORT (`scheduling: reuseport`). */
  readonly listenSource?: ListenSource;
  /**
   * Closes a backend's sessions when its drain timed out, where they live (a cluster primary
   * asks its workers). Undefined: the service closes its own.
   */
  readonly closeDrained?: (service: string, backend: Backend) => void;
}

/** One process: binds its listeners, closes its own sessions. */
export const SINGLE_PROCESS: ServicePlacement = Object.freeze({ binds: true });
