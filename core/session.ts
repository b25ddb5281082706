import { isIP, type Socket } from 'node:net';
import type { PeekState } from './peek-state.js';
import type {
  Backend,
  CloseReason,
  HostPort,
  ListenerInfo,
  ServiceRef,
  Session,
  SessionTls,
} from './types.js';

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
  #peerAddress: string | undefined = undefined;
  #peerPort = 0;
  /** Set by `setClient`; null: the client is the peer. */
  #clientAddress: string | null = null;
  #clientPort = 0;
  /** Set by `setClient` with a destination, or read on first use; null: not read yet. */
  #localAddress: string | null = null;
  #localPort = 0;
  tls: SessionTls | null = null;
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
  get peerAddress(): string {
    if (this.#peerAddress === undefined) {
      this.#peerAddress = this.client.remoteAddress ?? '';
      this.#peerPort = this.client.remotePort ?? 0;
    }
    return this.#peerAddress;
  }

  get peerPort(): number {
    if (this.#peerAddress === undefined) void this.peerAddress;
    return this.#peerPort;
  }

  get remoteAddress(): string {
    return this.#clientAddress ?? this.peerAddress;
  }

  get remotePort(): number {
    return this.#clientAddress === null ? this.peerPort : this.#clientPort;
  }

  get localAddress(): string {
    if (this.#localAddress === null) this.#readLocal();
    return this.#localAddress!;
  }

  get localPort(): number {
    if (this.#localAddress === null) this.#readLocal();
    return this.#localPort;
  }

  #readLocal(): void {
    this.#localAddress = this.client.localAddress ?? '';
    this.#localPort = this.client.localPort ?? 0;
  }

  setClient(address: string, port: number, destination?: HostPort): void {
    if (this.backend !== null) throw new Error(`session ${this.id}: setClient after a backend was selected`);
    checkEndpoint(address, port, 'client');
    if (destination !== undefined) checkEndpoint(destination.host, destination.port, 'destination');
    // The peer is kept for `peerAddress` (and for `closed` taps, after the socket is gone).
    void this.peerAddress;
    this.#clientAddress = address;
    this.#clientPort = port;
    if (destination !== undefined) {
      this.#localAddress = destination.host;
      this.#localPort = destination.port;
    }
  }

  get pool(): ServiceRef {
    return this.target.service;
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
  /** Internal: the peek stage's bytes and progress; null when no plugin peeks. */
  peek: PeekState | null = null;
  /**
   * Internal: the pipeline whose backends serve the session — `pipeline` unless a `route` tap
   * sent it to another service's pool. `pipeline` keeps the accepting side (capacity, release).
   */
  target: Owner;

  readonly service: ServiceRef;

  constructor(
    /** Internal: the pipeline that owns this session. */
    readonly pipeline: Owner,
    readonly listener: ListenerInfo,
    readonly client: Socket,
  ) {
    this.service = pipeline.service;
    this.target = pipeline;
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
      pool: this.target.service.name,
      listener: this.listener.address,
      client: `${this.remoteAddress}:${this.remotePort}`,
      peer: `${this.peerAddress}:${this.peerPort}`,
      backend: this.backend?.address ?? null,
      sni: this.tls?.sni ?? null,
      startedAt: new Date(this.startedAt).toISOString(),
      connected: this.connectedAt > 0,
      attempts: this.attempts,
      bytesIn: this.connectedAt > 0 ? this.client.bytesRead : this.bytesIn,
      bytesOut: this.connectedAt > 0 ? this.client.bytesWritten : this.bytesOut,
      closeReason: this.closeReason,
    };
  }
}

function checkEndpoint(address: string, port: number, what: string): void {
  if (typeof address !== 'string' || isIP(address) === 0)
    throw new TypeError(`setClient: ${what} address ${JSON.stringify(address)} is not an IP address`);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`setClient: ${what} port ${String(port)} is not 0-65535`);
}
