import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { freePort, joinHostPort } from './net.js';

/** Where a test backend listens: loopback and an OS-assigned port unless told otherwise. */
export interface BackendOptions {
  /** Default `127.0.0.1`; `::1` for IPv6. */
  host?: string;
  /** Default 0 (a free port). A fixed port brings a backend back where an old one was. */
  port?: number;
}

/**
 * A TCP server started by the kit. It accepts with `allowHalfOpen` (a client's FIN does not
 * end the server's side by itself), swallows socket errors (a reset is an expected event in
 * tests, not a crash) and tracks its sockets, so `close()` ends everything it holds.
 */
export class TestBackend {
  /** Sockets currently open on the server side. */
  readonly sockets = new Set<Socket>();
  /** Connections accepted so far (across `reopen()`). */
  accepted = 0;
  readonly server: Server;
  readonly host: string;
  #port = 0;
  readonly #onConnection: (socket: Socket, backend: TestBackend) => void;

  /** @internal Use the kit's methods (`kit.echo()`, `kit.backend(handler)`, ...). */
  constructor(onConnection: (socket: Socket, backend: TestBackend) => void, host: string) {
    this.host = host;
    this.#onConnection = onConnection;
    this.server = createServer({ allowHalfOpen: true }, (socket) => {
      this.sockets.add(socket);
      this.accepted++;
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      this.handle(socket);
    });
  }

  /** @internal What happens to each accepted socket. */
  protected handle(socket: Socket): void {
    this.#onConnection(socket, this);
  }

  /** The port it listens on (kept after `close()`, for `reopen()`). */
  get port(): number {
    return this.#port;
  }

  /** `host:port` as written in a config, IPv6 in brackets. */
  get address(): string {
    return joinHostPort(this.host, this.#port);
  }

  /** @internal */
  async listen(port: number): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(new Error(`test backend cannot listen on ${joinHostPort(this.host, port)}: ${err.code}`));
      this.server.once('error', onError);
      this.server.listen(port, this.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.#port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /**
   * Stops listening and destroys every open socket: "the backend process went away". Connects
   * are refused afterwards. Safe to call twice; the kit calls it on `close()`.
   */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again on the same port after `close()`: "the backend came back". */
  async reopen(): Promise<void> {
    if (this.server.listening) return;
    await this.listen(this.#port);
  }
}

/** What `kit.greeting()` does once its greeting is written. */
export type AfterGreeting = 'echo' | 'end' | 'hold';

/** A backend whose sockets do not read until `resume()`: the proxy writing to it meets backpressure. */
export class SlowReadingBackend extends TestBackend {
  /** Bytes read from all connections so far (only while resumed). */
  received = 0;
  #reading = false;

  /** @internal */
  constructor(host: string) {
    super(() => {}, host);
  }

  protected override handle(socket: Socket): void {
    // Paused before any 'data' listener exists, so adding one does not start the flow.
    socket.pause();
    socket.on('data', (c: Buffer) => {
      this.received += c.length;
    });
    // Once the peer's FIN is read, end ours too so the session can finish.
    socket.on('end', () => socket.end());
    if (this.#reading) socket.resume();
  }

  /** Whether its sockets read now. */
  get reading(): boolean {
    return this.#reading;
  }

  /** Starts reading (and discarding) on every socket, present and future. */
  resume(): void {
    this.#reading = true;
    for (const s of this.sockets) s.resume();
  }

  /** Stops reading again; the kernel buffers fill and the sender stalls. */
  pause(): void {
    this.#reading = false;
    for (const s of this.sockets) s.pause();
  }
}

/**
 * A port nothing listens on: connects are refused (ECONNREFUSED) at once. Found by binding
 * port 0 and closing it; another process could take the port later, so use it at once.
 */
export class RefusingBackend {
  /** @internal */
  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  get address(): string {
    return joinHostPort(this.host, this.port);
  }

  /** Nothing to release; here so every kit backend can be closed alike. */
  async close(): Promise<void> {}
}

/** @internal Starts a TestBackend running `onConnection` for each accepted socket. */
export function startBackend(
  onConnection: (socket: Socket, backend: TestBackend) => void,
  options: BackendOptions = {},
): Promise<TestBackend> {
  return new TestBackend(onConnection, options.host ?? '127.0.0.1').listen(options.port ?? 0);
}

/** @internal */
export const echo = (socket: Socket) => socket.pipe(socket);

/** @internal Writes `data`, then echoes, ends or holds the connection open (reading and discarding). */
export function greet(data: string | Buffer, after: AfterGreeting) {
  return (socket: Socket) => {
    if (after === 'end') return void socket.end(data);
    socket.write(data);
    if (after === 'echo') socket.pipe(socket);
    else socket.resume();
  };
}

/** @internal Accepts, then resets after `delay` ms (0: at once, before any byte). */
export function reset(delay: number) {
  return (socket: Socket) => {
    if (delay <= 0) return void socket.resetAndDestroy();
    const timer = setTimeout(() => socket.resetAndDestroy(), delay);
    socket.once('close', () => clearTimeout(timer));
  };
}

/** @internal */
export async function startRefusing(host = '127.0.0.1'): Promise<RefusingBackend> {
  return new RefusingBackend(host, await portBelowEphemeral(host));
}

/**
 * A port nothing listens on now, and that no later bind to port 0 can take: it lies below the
 * kernel's ephemeral range (32768 and up by default), where `listen(0)` never picks. A port
 * from `freePort()` would be free only until the next `listen(0)` on the same host took it
 * (an admin API started after the backend list was written, say), and the "refusing" backend
 * would then answer.
 */
async function portBelowEphemeral(host: string): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await bindable(host, port)) return port;
  }
  return freePort(host);
}

/** True when `host:port` can be bound now (nothing listens there). */
function bindable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** @internal */
export async function startSlowReading(options: BackendOptions = {}): Promise<SlowReadingBackend> {
  return new SlowReadingBackend(options.host ?? '127.0.0.1').listen(options.port ?? 0);
}
