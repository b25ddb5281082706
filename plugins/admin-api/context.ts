import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Backend, RegistryWriter, Runtime, Service } from '../../plugin-sdk/index.js';

/** What the admin API's own routes need from the plugin. */
export interface AdminContext {
  runtime: Runtime;
  log: Logger;
  /** The service named by `?service=` (checked by the server before any handler), or the default one. */
  serviceOf(request: FastifyRequest): Service;
  /**
   * Like `serviceOf`, for calls that change backends: refused (503) until the service has added
   * its config backends and bound its listeners, so a change cannot collide with the start.
   */
  serviceToChange(request: FastifyRequest): Service;
  /**
   * The plugin that keeps this service's backends in a store shared by several instances
   * (`REGISTRY_WRITER`, e.g. etcd-registry), when there is one: changes go there, not to the
   * local registry.
   */
  writerFor(service: Service): RegistryWriter | undefined;
  /** Logs a change for the audit trail and persists the service's backends when a state file is set. */
  changed(request: FastifyRequest, service: Service, op: string, backend: Backend): Promise<void>;
}

/** The service cannot take the call now; the client may retry. */
export class Unavailable extends Error {
  readonly statusCode = 503;
  readonly expose = true;
}

/** A change was applied but could not be saved: the caller must know a restart would lose it. */
export class NotPersisted extends Error {
  readonly statusCode = 500;
  readonly expose = true;
  constructor(cause: Error) {
    super(`change applied, but not saved to the state file: ${cause.message}`, { cause });
  }
}
