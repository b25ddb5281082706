import { connect as netConnect, type Socket } from 'node:net';

/** Links a pool socket to its entry, so the listeners below are shared functions, not closures. */
const kPooled: unique symbol = Symbol('switchyard.pooled');

type PoolSocket = Socket & { [kPooled]?: PooledSocket | undefined };

/** Why a warm socket left the pool other than by being handed out. */
export type LossReason = 'backend-closed' | 'overflow';

/** The generic-pool `create()` waiting for this socket to connect. */
export interface PendingCreate {
  resolve(socket: Socket): void;
  reject(err: Error): void;
}

/** What the socket listeners report to: the backend's pool. */
export interface PoolEvents {
  connected(entry: PooledSocket): void;
  connectFailed(entry: PooledSocket, reason: string): void;
  lost(entry: PooledSocket, reason: LossReason): void;
}

/**
 * One socket the pool owns: connecting, then idle (warm) until it is handed to a session or
 * dropped. While idle it reads, so the pool sees the backend's FIN or reset at once; whatever
 * the backend sends before pairing is kept in `chunks` and pushed back into the stream on
 * hand-over (see README: a paused socket would not notice a backend closing it).
 */
export class PooledSocket {
  state: 'connecting' | 'idle' = 'connecting';
  /** `Date.now()` when connected. */
  since = 0;
  /** Bytes received while idle, in order; null while none. */
  chunks: Buffer[] | null = null;
  buffered = 0;
  /** Set while connecting; settled exactly once (connected, failed, or pool closed). */
  create: PendingCreate | null = null;

  constructor(
    readonly owner: PoolEvents,
    readonly socket: Socket,
    readonly maxBuffered: number,
  ) {
    (socket as PoolSocket)[kPooled] = this;
  }
}

/** Opens a pool socket; the owner hears `connected` or `connectFailed` exactly once. */
export function dial(
  owner: PoolEvents,
  host: string,
  port: number,
  connectTimeout: number,
  maxBuffered: number,
): PooledSocket {
  const socket = netConnect({ host, port, allowHalfOpen: true, noDelay: true });
  // A warm socket alone must not keep the process alive (the listener does while serving).
  socket.unref();
  const entry = new PooledSocket(owner, socket, maxBuffered);
  socket.on('error', onError);
  socket.on('close', onClose);
  socket.once('connect', onConnect);
  if (connectTimeout > 0) {
    socket.setTimeout(connectTimeout);
    socket.on('timeout', onConnectTimeout);
  }
  return entry;
}

/**
 * Whether a warm socket can be handed out: open both ways, nothing ended, greeting within the
 * limit, not past its TTL.
 * Checked on borrow because a FIN may be on its way even though no event has run yet.
 */
export function usable(entry: PooledSocket, now: number, ttl: number): boolean {
  const s = entry.socket;
  return (
    !s.destroyed &&
    s.readyState === 'open' &&
    s.readable &&
    s.writable &&
    !s.readableEnded &&
    !s.writableEnded &&
    entry.buffered <= entry.maxBuffered &&
    now - entry.since < ttl
  );
}

/**
 * Detaches a warm socket from the pool for one session: paused (the core resumes it after
 * `established`), every pool listener removed, and the bytes the backend sent while idle put
 * back at the head of the stream so the client reads them first, in order, exactly once.
 */
export function handOver(entry: PooledSocket): Socket {
  const socket = entry.socket as PoolSocket;
  socket.pause();
  socket.removeListener('data', onIdleData);
  socket.removeListener('end', onIdleEnd);
  socket.removeListener('error', onError);
  socket.removeListener('close', onClose);
  const chunks = entry.chunks;
  if (chunks !== null) {
    for (let i = chunks.length - 1; i >= 0; i--) socket.unshift(chunks[i]!);
    entry.chunks = null;
  }
  socket[kPooled] = undefined;
  socket.ref();
  return socket;
}

/** Closes a socket the pool gives up; its listeners ignore it from now on. */
export function discard(entry: PooledSocket): void {
  const socket = entry.socket as PoolSocket;
  socket[kPooled] = undefined;
  entry.chunks = null;
  socket.destroy();
}

/** The pool entry of a socket the pool still owns (undefined once handed over or discarded). */
export function entryOf(socket: Socket): PooledSocket | undefined {
  return (socket as PoolSocket)[kPooled];
}

// ---- shared listeners (this = the pool socket) ----

function onConnect(this: Socket): void {
  const entry = entryOf(this);
  if (entry === undefined) return;
  this.setTimeout(0);
  this.removeListener('timeout', onConnectTimeout);
  entry.state = 'idle';
  entry.since = Date.now();
  this.on('data', onIdleData);
  this.on('end', onIdleEnd);
  entry.owner.connected(entry);
}

function onConnectTimeout(this: Socket): void {
  const entry = entryOf(this);
  if (entry !== undefined && entry.state === 'connecting') entry.owner.connectFailed(entry, 'ETIMEDOUT');
}

function onError(this: Socket, err: NodeJS.ErrnoException): void {
  const entry = entryOf(this);
  // While idle, 'close' follows and reports the loss.
  if (entry !== undefined && entry.state === 'connecting')
    entry.owner.connectFailed(entry, err.code ?? err.message);
}

function onClose(this: Socket): void {
  const entry = entryOf(this);
  if (entry === undefined) return;
  if (entry.state === 'connecting') entry.owner.connectFailed(entry, 'closed');
  else entry.owner.lost(entry, 'backend-closed');
}

function onIdleData(this: Socket, chunk: Buffer): void {
  const entry = entryOf(this);
  if (entry === undefined) return;
  entry.buffered += chunk.length;
  if (entry.buffered > entry.maxBuffered) {
    entry.owner.lost(entry, 'overflow');
    return;
  }
  if (entry.chunks === null) entry.chunks = [chunk];
  else entry.chunks.push(chunk);
}

function onIdleEnd(this: Socket): void {
  const entry = entryOf(this);
  if (entry !== undefined) entry.owner.lost(entry, 'backend-closed');
}
