import type { Socket } from 'node:net';
import type { PeekHook, PeekTap } from './peek.js';
import { PeekState } from './peek-state.js';
import {
  type SessionImpl as CoreSession,
  type SessionSocket as CoreSessionSocket,
  kSession,
} from './session.js';
import type { Rejection } from './types.js';

/** What the peek stage needs of the pipeline that owns the session (core/pipeline.ts). */
export interface PeekOwner {
  readonly service: CoreSession['service'];
  readonly hooks: { readonly peek: PeekHook };
  readonly counters: { peekTimeouts: number };
  tapFailed(session: SessionImpl, err: unknown, phase: string): void;
  refuse(session: SessionImpl, rejection: Rejection): void;
  admit(session: SessionImpl): void;
}

type SessionImpl = CoreSession<PeekOwner>;
type SessionSocket = CoreSessionSocket<PeekOwner>;

const EMPTY = Buffer.alloc(0);
const PEEK_LIMIT: Rejection = Object.freeze({ reason: 'peek-limit', reset: true });

/** Runs the peek stage; the pipeline continues with `admit` when every tap is done. */
export function startPeek(pipeline: PeekOwner, session: SessionImpl): void {
  session.peek = new PeekState();
  runTaps(pipeline, session, -1);
}

/**
 * Shows each tap, in order, the bytes left by the previous ones, until one waits for more
 * (then read and wait), refuses, or all are done (then admit). `timedOut` is the index of the
 * tap whose timer fired, so that tap alone is told no more bytes will come.
 */
function runTaps(pipeline: PeekOwner, session: SessionImpl, timedOut: number): void {
  const state = session.peek!;
  const taps = pipeline.hooks.peek.taps;
  while (state.index < taps.length) {
    const tap = taps[state.index]!;
    const available = state.length - state.offset;
    const full = available >= tap.maxBytes;
    const shown = full ? tap.maxBytes : available;
    const bytes = shown === 0 ? EMPTY : state.buffer!.subarray(state.offset, state.offset + shown);
    const final = full || state.ended || timedOut === state.index;
    let verdict: ReturnType<PeekTap['fn']>;
    try {
      verdict = tap.fn(session, bytes, final);
    } catch (err) {
      stopPeek(session);
      pipeline.tapFailed(session, err, 'peek');
      return;
    }
    if (verdict === 'more') {
      if (!final) {
        wait(session, state, tap);
        return;
      }
      stopPeek(session);
      if (full) pipeline.refuse(session, PEEK_LIMIT);
      else if (state.ended) session.close('client-closed', `half-closed during peek (${tap.name})`);
      else {
        pipeline.counters.peekTimeouts++;
        session.close('peek-timeout', tap.name);
      }
      return;
    }
    if (verdict !== undefined && typeof verdict === 'object') {
      stopPeek(session);
      pipeline.refuse(session, verdict);
      return;
    }
    const consumed = verdict ?? 0;
    if (!Number.isInteger(consumed) || consumed < 0 || consumed > shown) {
      stopPeek(session);
      const err = new Error(`peek tap "${tap.name}" answered ${String(verdict)} after seeing ${shown} bytes`);
      pipeline.tapFailed(session, err, 'peek');
      return;
    }
    state.offset += consumed;
    state.index++;
  }
  stopPeek(session);
  pipeline.admit(session);
}

/** Reads from the client (once) and arms the waiting tap's timer (once per tap). */
function wait(session: SessionImpl, state: PeekState, tap: PeekTap): void {
  if (!state.reading) {
    state.reading = true;
    const client = session.client;
    client.on('data', onPeekData);
    client.on('end', onPeekEnd);
    client.resume();
  }
  if (state.timerTap !== state.index) {
    if (state.timer !== null) clearTimeout(state.timer);
    state.timerTap = state.index;
    state.timer = setTimeout(onPeekTimeout, tap.timeout, session);
  }
}

/** Ends reading and the timer; the client stays paused until the pipe starts. */
export function stopPeek(session: SessionImpl): void {
  const state = session.peek;
  if (state === null) return;
  if (state.timer !== null) {
    clearTimeout(state.timer);
    state.timer = null;
    state.timerTap = -1;
  }
  if (state.reading) {
    state.reading = false;
    const client = session.client;
    client.removeListener('data', onPeekData);
    // 'end' stays watched until the pipe starts: once the socket has been read from, a FIN
    // that arrives while it is paused is emitted at once (empty buffer), not on resume.
    if (!client.destroyed) client.pause();
  }
}

/**
 * The pipe is about to start: write what was peeked and not consumed to the upstream, and
 * its FIN when the client half-closed while we peeked (its 'end' will not come again).
 */
export function forwardPeeked(session: SessionImpl, upstream: Socket): void {
  const state = session.peek!;
  session.client.removeListener('end', onPeekEnd);
  const rest = state.rest();
  if (rest !== null) upstream.write(rest);
  state.buffer = null;
  if (state.ended) {
    if (session.closeReason === null) session.closeReason = 'client-closed';
    upstream.end();
  }
}

function append(state: PeekState, chunk: Buffer): void {
  if (state.buffer === null) {
    // The common case: everything a tap needs arrives in the first read. Keep it, no copy.
    state.buffer = chunk;
    state.length = chunk.length;
    return;
  }
  const needed = state.length + chunk.length;
  if (needed > state.buffer.length) {
    // Doubling: a client trickling bytes one by one costs O(n) copies, not O(n²).
    const grown = Buffer.allocUnsafe(Math.max(needed, state.length * 2, 256));
    state.buffer.copy(grown, 0, 0, state.length);
    state.buffer = grown;
  }
  chunk.copy(state.buffer, state.length);
  state.length = needed;
}

// ---- client socket listeners while peeking (this = client socket) ----

function onPeekData(this: Socket, chunk: Buffer): void {
  const session = (this as SessionSocket)[kSession]!;
  const state = session.peek!;
  append(state, chunk);
  runTaps(session.pipeline, session, -1);
}

function onPeekEnd(this: Socket): void {
  const session = (this as SessionSocket)[kSession]!;
  const state = session.peek!;
  state.ended = true;
  if (state.reading) runTaps(session.pipeline, session, -1);
}

function onPeekTimeout(session: SessionImpl): void {
  const state = session.peek!;
  const tap = state.timerTap;
  state.timer = null;
  state.timerTap = -1;
  if (session.released || session.clientClosed) return;
  runTaps(session.pipeline, session, tap);
}
