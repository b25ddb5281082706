import type { Socket } from 'node:net';
import type { PeekTap } from './peek.js';
import type { Pipeline } from './pipeline.js';
import { kSession, type SessionImpl, type SessionSocket } from './session.js';
import type { Rejection } from './types.js';

/**
 * The peek stage of one session (core/peek.ts has the contract). Allocated only when some
 * plugin taps `peek`; the client socket's listeners are shared functions, so peeking costs no
 * closure per session.
 */
export class PeekState {
  /** The tap being asked (index into `hook.taps`). */
  index = 0;
  /** Bytes read so far, in `buffer[0, length)`; consumed ones before `offset`. */
  buffer: Buffer | null = null;
  length = 0;
  offset = 0;
  timer: NodeJS.Timeout | null = null;
  /** The tap the running timer waits for; -1 when none. */
  timerTap = -1;
  /** Listening for data on the client. */
  reading = false;
  /** The client half-closed while we peeked: forward its FIN after the bytes. */
  ended = false;

  /** Bytes read but not consumed: forwarded to the backend first. */
  rest(): Buffer | null {
    return this.length > this.offset ? this.buffer!.subarray(this.offset, this.length) : null;
  }
}

const EMPTY = Buffer.alloc(0);
const PEEK_LIMIT: Rejection = Object.freeze({ reason: 'peek-limit', reset: true });

/** Runs the peek stage; the pipeline continues with `admit` when every tap is done. */
export function startPeek(pipeline: Pipeline, session: SessionImpl): void {
  session.peek = new PeekState();
  runTaps(pipeline, session, -1);
}

/**
 * Shows each tap, in order, the bytes left by the previous ones, until one waits for more
 * (then read and wait), refuses, or all are done (then admit). `timedOut` is the index of the
 * tap whose timer fired, so that tap alone is told no more bytes will come.
 */
function runTaps(pipeline: Pipeline, session: SessionImpl, timedOut: number): void {
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
