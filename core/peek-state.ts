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
