import type { Server, Socket } from 'node:net';
import type { CidrList, LogThrottle, ServerFactory } from '../../plugin-sdk/index.js';
import { type ProxyHeader, parseProxyHeader } from './parse.js';

/**
 * The header on a listener where TLS ends here (tls-listener): a load balancer sends it before
 * the TLS handshake (HAProxy `bind ... ssl accept-proxy`, an AWS NLB in front of a TLS
 * listener), so it cannot wait for the peek stage, which sees the decrypted stream. It is read
 * here on the raw socket; the rest of the first read (the ClientHello) is put back for the TLS
 * server, and the session finds the header again in the peek stage by its peer address.
 */

/** What the reader counts and checks; shared by every connection of the service. */
export interface BeforeTlsSettings {
  readonly trusted: CidrList;
  readonly maxBytes: number;
  readonly timeout: number;
  readonly throttle: LogThrottle;
  readonly stats: { invalid: number; untrusted: number; timeouts: number };
}

interface RawState {
  settings: BeforeTlsSettings;
  headers: Map<string, ProxyHeader>;
  pending: Set<Socket>;
  onConnection: (socket: Socket) => void;
  buffered: Buffer | null;
  timer: NodeJS.Timeout | null;
  key: string;
}

const kState = Symbol('proxy-protocol.beforeTls');
type RawSocket = Socket & { [kState]?: RawState };

/** Headers read and not yet claimed by a session, by `peer address|port`. */
export class BeforeTlsHeaders {
  readonly #headers = new Map<string, ProxyHeader>();
  readonly #pending = new Set<Socket>();

  constructor(private readonly settings: BeforeTlsSettings) {}

  /** Connections reading their header, plus headers read whose handshake is not done. */
  get size(): number {
    return this.#pending.size + this.#headers.size;
  }

  /** The header read for the session whose TCP peer is `address:port`, once. */
  take(address: string, port: number): ProxyHeader | undefined {
    const key = `${address}|${port}`;
    const header = this.#headers.get(key);
    if (header !== undefined) this.#headers.delete(key);
    return header;
  }

  /** Wraps `previous` so each raw connection gives its header before the TLS server sees it. */
  factory(previous: ServerFactory): ServerFactory {
    return (info, onConnection) => {
      const server: Server = previous(info, (raw: Socket) => this.#start(raw as RawSocket, onConnection));
      // A closing listener waits for its connections: those still owing a header are no
      // session yet, so nobody else would end them before the header timeout.
      const close = server.close;
      const pending = this.#pending;
      server.close = function (this: Server, callback?: (err?: Error) => void) {
        for (const raw of pending) raw.destroy();
        return close.call(this, callback);
      };
      return server;
    };
  }

  #start(raw: RawSocket, onConnection: (socket: Socket) => void): void {
    const { settings } = this;
    raw.on('error', ignore);
    const peer = raw.remoteAddress;
    if (peer === undefined) {
      // Reset before it was accepted (a health check's header, then RST): nobody to refuse.
      raw.destroy();
      return;
    }
    if (!settings.trusted.has(peer)) {
      settings.stats.untrusted++;
      settings.throttle.warn('untrusted', { peer }, 'PROXY header from a peer not in trusted; refused');
      raw.resetAndDestroy();
      return;
    }
    raw[kState] = {
      settings,
      headers: this.#headers,
      pending: this.#pending,
      onConnection,
      buffered: null,
      timer: setTimeout(onTimeout, settings.timeout, raw),
      key: `${peer}|${raw.remotePort}`,
    };
    this.#pending.add(raw);
    raw.on('data', onData);
    raw.on('close', onClose);
    // Listeners accept paused (pauseOnConnect): read until the header is complete.
    raw.resume();
  }
}

function ignore(): void {}

/** Shared handlers (`this` = the raw socket): no closure per connection. */
function onData(this: RawSocket, chunk: Buffer): void {
  const state = this[kState]!;
  const { settings } = state;
  const bytes = state.buffered === null ? chunk : Buffer.concat([state.buffered, chunk]);
  const result = parseProxyHeader(
    bytes.length > settings.maxBytes ? bytes.subarray(0, settings.maxBytes) : bytes,
    settings.maxBytes,
  );
  if (result === 'more') {
    if (bytes.length < settings.maxBytes) {
      state.buffered = bytes;
      return;
    }
    refuse(this, state, 'more than the largest header without a complete one');
    return;
  }
  if ('invalid' in result) {
    refuse(this, state, result.invalid);
    return;
  }
  finish(this, state);
  this.removeListener('data', onData);
  this.pause();
  if (bytes.length > result.length) this.unshift(bytes.subarray(result.length));
  state.headers.set(state.key, result);
  state.onConnection(this);
}

function refuse(raw: RawSocket, state: RawState, error: string): void {
  finish(raw, state);
  state.settings.stats.invalid++;
  state.settings.throttle.warn(
    'invalid',
    { peer: raw.remoteAddress, error },
    'bad PROXY header (before TLS); refused',
  );
  raw.resetAndDestroy();
}

function finish(raw: RawSocket, state: RawState): void {
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = null;
  state.buffered = null;
  state.pending.delete(raw);
}

function onTimeout(raw: RawSocket): void {
  const state = raw[kState]!;
  state.timer = null;
  finish(raw, state);
  state.settings.stats.timeouts++;
  state.settings.throttle.warn(
    'timeout',
    { peer: raw.remoteAddress },
    'no complete PROXY header (before TLS) in time; closed',
  );
  raw.destroy();
}

/** The raw socket is gone: forget its header if no session took it (a failed handshake). */
function onClose(this: RawSocket): void {
  const state = this[kState]!;
  finish(this, state);
  state.headers.delete(state.key);
}
