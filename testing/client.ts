import { connect, type Socket } from 'node:net';
import { hostPort } from './net.js';

/** Options of `kit.connect()`. */
export interface ClientOptions {
  /**
   * Keep our side open after the peer's FIN (default false: Node ends ours at once). Set it to
   * test a client that keeps sending after the proxy half-closed.
   */
  allowHalfOpen?: boolean;
  /** Give up connecting after this many ms (default 5000). */
  timeout?: number;
}

/** How a connection ended, as the client saw it. */
export interface CloseInfo {
  /** The connection ended with a TCP reset (ECONNRESET) rather than FINs. */
  reset: boolean;
  /** The socket error's code (`ECONNRESET`, `EPIPE`, ...), or null when it closed cleanly. */
  error: string | null;
  /** Whether the peer's FIN was read before the close. */
  ended: boolean;
}

/** Default time the waiting helpers wait before they throw. */
const WAIT = 5000;

const show = (b: Buffer) => JSON.stringify(b.length > 200 ? `${b.subarray(0, 200)}…` : String(b));

/**
 * A connected client socket that buffers everything it receives, so a test reads with
 * `read(n)` / `expect(bytes)` / `collect()` without racing the socket's events, and awaits
 * `closed()` to learn whether the proxy closed with a FIN or a reset. Socket errors are
 * recorded, never thrown as unhandled 'error' events. The raw socket is `socket`.
 */
export class TestClient<S extends Socket = Socket> {
  readonly #chunks: Buffer[] = [];
  #length = 0;
  /** Set by `discard()`: count what arrives instead of keeping it. */
  #discarded: number | null = null;
  #ended = false;
  #closed = false;
  #error: NodeJS.ErrnoException | null = null;
  readonly #waiters = new Set<() => void>();
  readonly #whenClosed: Promise<CloseInfo>;

  /** @internal Use `kit.connect()`, or `kit.adopt(socket)` for a socket you connected yourself. */
  constructor(readonly socket: S) {
    socket.on('data', (chunk: Buffer) => {
      if (this.#discarded !== null) this.#discarded += chunk.length;
      else {
        this.#chunks.push(chunk);
        this.#length += chunk.length;
      }
      this.#notify();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#error ??= err;
    });
    this.#whenClosed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#closed = true;
        this.#notify();
        resolve(this.#closeInfo());
      });
    });
  }

  /** The local port: matches `session.remotePort` of the proxy's session for this client. */
  get localPort(): number {
    return this.socket.localPort!;
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.#length;
  }

  /** The peer's FIN has been read. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The socket has closed (FIN both ways, reset or destroy). */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Writes `data`; resolves once it is handed to the kernel, rejects on a socket error. */
  send(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Sends FIN (after `data`, if given): the half-close. Resolves once it is sent. */
  end(data?: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.socket.once('error', onError);
      this.socket.end(data ?? '', () => {
        this.socket.off('error', onError);
        resolve();
      });
    });
  }

  /** Reads exactly `n` bytes, waiting up to `timeoutMs`; throws if the connection ends first. */
  async read(n: number, timeoutMs = WAIT): Promise<Buffer> {
    await this.#until(
      () => this.#length >= n,
      timeoutMs,
      () => `${n} bytes`,
    );
    return this.#take(n);
  }

  /** Reads up to and including the first `delimiter` (e.g. `'\n'`). */
  async readUntil(delimiter: string | Buffer, timeoutMs = WAIT): Promise<Buffer> {
    const d = Buffer.from(delimiter);
    let at = -1;
    await this.#until(
      () => {
        at = this.#peek().indexOf(d);
        return at >= 0;
      },
      timeoutMs,
      () => `${show(d)}`,
    );
    return this.#take(at + d.length);
  }

  /**
   * Reads `data.length` bytes and throws unless they are exactly `data`, quoting both. The
   * usual way to check an answer: `await client.expect('hello')`.
   */
  async expect(data: string | Buffer, timeoutMs = WAIT): Promise<void> {
    const want = Buffer.from(data);
    const got = await this.read(want.length, timeoutMs);
    if (!got.equals(want)) throw new Error(`expected ${show(want)}, received ${show(got)}`);
  }

  /**
   * Everything received until the peer's FIN (or the close), including bytes not read yet.
   * Throws when the connection is reset instead, or nothing ends it within `timeoutMs`.
   */
  async collect(timeoutMs = WAIT): Promise<Buffer> {
    await this.#until(
      () => this.#ended || this.#closed,
      timeoutMs,
      () => 'the end of the stream',
      true,
    );
    if (this.#error && !this.#ended)
      throw new Error(`connection failed (${this.#error.code}) after ${this.#length} bytes`);
    return this.#take(this.#length);
  }

  /**
   * Reads and drops everything until the peer's FIN (or the close), resolving with the number
   * of bytes, buffered ones included: for large transfers a test only needs to count.
   * Throws like `collect()`. Received bytes are not kept afterwards either.
   */
  async discard(timeoutMs = WAIT): Promise<number> {
    this.#discarded ??= this.#take(this.#length).length;
    await this.#until(
      () => this.#ended || this.#closed,
      timeoutMs,
      () => 'the end of the stream',
      true,
    );
    if (this.#error && !this.#ended)
      throw new Error(`connection failed (${this.#error.code}) after ${this.#discarded} bytes`);
    return this.#discarded;
  }

  /** Resolves once the socket has closed, with how it closed. Throws after `timeoutMs`. */
  async closed(timeoutMs = WAIT): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`connection still open after ${timeoutMs} ms (${this.#length} bytes unread)`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.#whenClosed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Awaits the close and throws unless it was a TCP reset. */
  async expectReset(timeoutMs = WAIT): Promise<void> {
    const info = await this.closed(timeoutMs);
    if (!info.reset) throw new Error(`expected a reset, but the connection closed with ${describe(info)}`);
  }

  /**
   * Stops reading: the kernel buffers fill and the proxy meets backpressure. Nothing arrives
   * (and `read()`, `collect()`, ... wait) until `resume()`.
   */
  pause(): void {
    this.socket.pause();
  }

  /** Reads again after `pause()`. */
  resume(): void {
    this.socket.resume();
  }

  /** Closes with a TCP reset (RST), as a crashed client would. */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  /** Closes at once (FIN if the connection is up), dropping unsent data. */
  destroy(): void {
    this.socket.destroy();
  }

  #closeInfo(): CloseInfo {
    const error = this.#error?.code ?? null;
    return { reset: error === 'ECONNRESET', error, ended: this.#ended };
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  #peek(): Buffer {
    if (this.#chunks.length > 1) this.#chunks.splice(0, this.#chunks.length, Buffer.concat(this.#chunks));
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #take(n: number): Buffer {
    const all = this.#peek();
    const out = all.subarray(0, n);
    this.#chunks.length = 0;
    if (all.length > n) this.#chunks.push(all.subarray(n));
    this.#length = all.length - n;
    return out;
  }

  /** Waits until `done()`; fails early when the stream ended (unless `endOk`) or on timeout. */
  #until(done: () => boolean, timeoutMs: number, what: () => string, endOk = false): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (done()) return finish();
        if (!endOk && (this.#ended || this.#closed))
          finish(
            new Error(
              `connection ${this.#closed ? `closed (${describe(this.#closeInfo())})` : 'ended'} before ${what()} arrived; got ${show(this.#peek())}`,
            ),
          );
      };
      timer = setTimeout(
        () =>
          finish(
            new Error(`timed out after ${timeoutMs} ms waiting for ${what()}; got ${show(this.#peek())}`),
          ),
        timeoutMs,
      );
      this.#waiters.add(check);
      check();
    });
  }
}

function describe(info: CloseInfo): string {
  if (info.error) return info.error;
  return info.ended ? 'a FIN' : 'no FIN (closed locally)';
}

/**
 * @internal Connects to `address`; resolves once connected. A connection reset before Node
 * reports the connect (a proxy that resets at accept) still resolves, with a closed client:
 * the handshake completed, which is what a test of that reset wants to see.
 */
export function connectClient(address: string, options: ClientOptions = {}): Promise<TestClient> {
  const timeoutMs = options.timeout ?? WAIT;
  return new Promise((resolve, reject) => {
    const socket = connect({ ...hostPort(address), allowHalfOpen: options.allowHalfOpen ?? false });
    const client = new TestClient(socket);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${address} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(client);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      const code = (socket.errored as NodeJS.ErrnoException | null)?.code;
      if (code === 'ECONNRESET') resolve(client);
      else reject(new Error(`connect to ${address} failed: ${code ?? 'closed'}`));
    });
  });
}
