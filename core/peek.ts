import { MAX_DURATION_MS } from './duration.js';
import type { Rejection, Session } from './types.js';

/**
 * What a peek tap answers when shown the client's first bytes:
 * - `'more'`: not enough bytes to decide; the tap is called again when more arrive. Answered
 *   when `final` is true, the session ends: after the tap's `timeout` it is closed with reason
 *   `peek-timeout` (counted in `counters.peekTimeouts`); with `maxBytes` shown it is refused
 *   (rejection reason `peek-limit`, reset); after the client's FIN it is closed `client-closed`.
 * - `undefined` (or `0`): done; the bytes stay and are forwarded to the backend.
 * - a number `n` (1 ≤ n ≤ bytes.length): done, and the first `n` bytes are consumed — never
 *   forwarded, and not shown to later taps (a PROXY protocol header).
 * - a `Rejection`: refuse the session, as an `accept` tap would.
 */
export type PeekVerdict = number | 'more' | Rejection | undefined | void;

/**
 * A peek tap. `bytes` are the client bytes not consumed by earlier taps, at most `maxBytes` of
 * them (a view valid only during the call: copy what you keep). The first call comes at once
 * with no bytes, before anything is read — a tap that can decide without bytes (a source it
 * does not cover, a listener it does not serve) answers then and nothing is read for it.
 * `final` is true when no more bytes will be shown: `maxBytes` reached, this tap's `timeout`
 * passed, or the client half-closed.
 */
export type PeekFn = (session: Session, bytes: Buffer, final: boolean) => PeekVerdict;

export interface PeekTapOptions {
  /** The plugin's name; `closeDetail` of a session that timed out waiting for this tap. */
  name: string;
  /**
   * Order among peek taps (`STAGE`): taps run one after another in ascending stage, each on
   * the bytes the previous ones left. A parser of something sent first on the wire (the PROXY
   * header) taps at `STAGE.CLAIM`; content inspectors (a TLS ClientHello) at the default.
   */
  stage?: number;
  /** Most bytes this tap may be shown: 1 to 65536. More is never buffered for it. */
  maxBytes: number;
  /** ms this tap waits for its bytes, counted from its first `'more'`; 1 ms to 24.8 days. */
  timeout: number;
}

/** One registered peek tap. */
export interface PeekTap extends Readonly<Required<PeekTapOptions>> {
  readonly fn: PeekFn;
}

/** Largest `maxBytes` a tap may ask for: one socket read's worth; a ClientHello fits. */
export const MAX_PEEK_BYTES = 65_536;

/**
 * peek — between `accept` and `admit`: plugins that need the client's first bytes before a
 * backend is chosen (a PROXY protocol header, a TLS ClientHello for SNI routing). Taps run in
 * stage order; see `PeekVerdict` for what they answer. Nothing is read from the client unless
 * a tap answers `'more'`, so server-first protocols (SMTP, MySQL) keep working untouched when
 * no tap covers them. The bytes not consumed reach the backend intact, before anything the
 * client sends later.
 *
 * Not a tapable hook (a tap here waits for bytes across calls), but tapped the same way:
 * once, in `apply`:
 *
 *   service.hooks.peek.tap({ name: 'my-plugin', maxBytes: 512, timeout: 5000 }, (session, bytes, final) => ...);
 */
export class PeekHook {
  readonly #taps: PeekTap[] = [];

  tap(options: PeekTapOptions, fn: PeekFn): void {
    const { name, maxBytes, timeout } = options;
    const stage = options.stage ?? 0;
    if (typeof name !== 'string' || name === '')
      throw new TypeError('peek.tap: name must be a non-empty string');
    if (typeof fn !== 'function') throw new TypeError(`peek.tap (${name}): fn must be a function`);
    if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_PEEK_BYTES)
      throw new RangeError(`peek.tap (${name}): maxBytes must be an integer from 1 to ${MAX_PEEK_BYTES}`);
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_DURATION_MS)
      throw new RangeError(
        `peek.tap (${name}): timeout must be an integer number of ms from 1 to ${MAX_DURATION_MS}`,
      );
    if (!Number.isFinite(stage)) throw new RangeError(`peek.tap (${name}): stage must be a number`);
    const tap: PeekTap = Object.freeze({ name, stage, maxBytes, timeout, fn });
    // Stable: equal stages keep the order they were tapped in (as tapable does).
    let i = this.#taps.length;
    while (i > 0 && this.#taps[i - 1]!.stage > stage) i--;
    this.#taps.splice(i, 0, tap);
  }

  /** True when any plugin tapped it; the core reads nothing from clients otherwise. */
  isUsed(): boolean {
    return this.#taps.length > 0;
  }

  /** The taps in the order they run. */
  get taps(): readonly PeekTap[] {
    return this.#taps;
  }
}
