import type { Socket } from 'node:net';
import type { Backend, CloseReason, ListenerInfo, ServiceRef, Session } from './types.js';

/** Links a socket to its session so shared listener functions need no per-connection closure. */
export const kSession: unique symbol = Symbol('switchyard.session');

/** What owns sessions (the core's pipeline): the session only needs its service. */
export interface SessionOwner {
  readonly service: ServiceRef;
}

export type SessionSocket<Owner extends SessionOwner = SessionOwner> = Socket & {
  [kSession]?: SessionImpl<Owner>;
};

let nextId = 1;

/**
 * The core's session; a class so every session has one hidden shape on the hot path. Typed by
 * its owner so the owner's module reaches back through `session.pipeline` without this module
 * importing it.
 */
export class SessionImpl<Owner extends SessionOwner = SessionOwner> implements Session {
  readonly id: number;
  upstream: Socket | null = null;
  backend: Backend | null = null;
  #remoteAddress: string | undefined = undefined;
  #remotePort = 0;
  readonly startedAt: number;
  connectedAt = 0;
  endedAt = 0;
  attempts = 0;
  tried: Backend[] | null = null;
  bytesIn = 0;
  bytesOut = 0;
  closeReason: CloseReason | null = null;
  closeDetail: string | null = null;
  #data: Record<string, unknown> | null = null;

  /** Read on first use: getpeername is a syscall most sessions never need. */
  get remoteAddress(): string {
    if (this.#remoteAddress === undefined) {
      this.#remoteAddress = this.client.remoteAddress ?? '';
      this.#remotePort = this.client.remotePort ?? 0;
    }
    return this.#remoteAddress;
  }

  get remotePort(): number {
    if (this.#remoteAddress === undefined) void this.remoteAddress;
    return this.#remotePort;
  }

  /** Allocated on first use: most sessions never need it. */
  get data(): Record<string, unknown> {
    if (this.#data === null) this.#data = {};
    return this.#data;
  }

  /** Internal: the client socket has emitted 'close'. */
  clientClosed = false;
  /** Internal: `backend.active` counts this session. */
  counted = false;
  /** Internal: released (closed hook ran). */
  released = false;
  /** Internal: the pending connect attempt's timer. */
  connectTimer: NodeJS.Timeout | null = null;
  /** Internal: idle sweep bookkeeping (bytes read on both sockets at the last change, and when). */
  idleMark = 0;
  idleSince = 0;

  readonly service: ServiceRef;

  constructor(
    /** Internal: the pipeline that owns this session. */
    readonly pipeline: Owner,
    readonly listener: ListenerInfo,
    readonly client: Socket,
  ) {
    this.service = pipeline.service;
    this.id = nextId++;
    this.startedAt = Date.now();
  }

  /** Close both sides now; the first reason given wins. */
  close(reason: CloseReason, detail: string | null = null): void {
    if (this.closeReason === null) {
      this.closeReason = reason;
      this.closeDetail = detail;
    }
    this.client.destroy();
    this.upstream?.destroy();
  }

  /** A plain object for logs and the admin API. */
  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      service: this.service.name,
      listener: this.listener.address,
      client: `${this.remoteAddress}:${this.remotePort}`,
      backend: this.backend?.address ?? null,
      startedAt: new Date(this.startedAt).toISOString(),
      connected: this.connectedAt > 0,
      attempts: this.attempts,
      bytesIn: this.connectedAt > 0 ? this.client.bytesRead : this.bytesIn,
      bytesOut: this.connectedAt > 0 ? this.client.bytesWritten : this.bytesOut,
      closeReason: this.closeReason,
    };
  }
}
