import type { Socket } from 'node:net';
import {
  type AfterGreeting,
  type BackendOptions,
  echo,
  greet,
  type RefusingBackend,
  reset,
  type SlowReadingBackend,
  startBackend,
  startRefusing,
  startSlowReading,
  type TestBackend,
} from './backends.js';
import { type Blackhole, startBlackhole } from './blackhole.js';
import { type ClientOptions, connectClient, TestClient } from './client.js';
import { createProxy, type ProxyOptions, type TestConfig, type TestProxy } from './proxy.js';

/** Anything the kit can close for you: servers, files, child processes, other kits. */
export interface Closeable {
  close(): unknown;
}

/**
 * Everything one test (or one `describe`) starts: proxies, backends, clients. Each method
 * starts something on loopback, remembers it, and `close()` stops it all — clients first,
 * then proxies, then backends, then whatever was handed to `defer()`/`track()`. After
 * `close()` the kit is empty and can be used again, so one kit serves every test of a file:
 *
 *   const kit = createTestKit();
 *   afterEach(kit.close);
 */
export class TestKit {
  readonly #clients: Array<TestClient<Socket>> = [];
  readonly #proxies: TestProxy[] = [];
  readonly #backends: Closeable[] = [];
  readonly #deferred: Array<() => unknown> = [];

  /**
   * Starts Switchyard in this process from a config object (or YAML text) and resolves once
   * it listens. An object config without `listen` (and without `services`) listens on
   * `127.0.0.1:0`, a free port: read it from `proxy.address`. Rejects with the same errors as
   * `switchyard --config` (config errors with line:col, plugin apply and start failures).
   */
  async proxy(config: TestConfig | string, options: ProxyOptions = {}): Promise<TestProxy> {
    const proxy = await createProxy(config, options);
    this.#proxies.push(proxy);
    if (options.start !== false) await proxy.start();
    return proxy;
  }

  /** A server running `onConnection` for each accepted socket (errors swallowed, sockets tracked). */
  backend(
    onConnection: (socket: Socket, backend: TestBackend) => void,
    options?: BackendOptions,
  ): Promise<TestBackend> {
    return this.#keep(startBackend(onConnection, options));
  }

  /** Echoes every byte; after the client's FIN it ends its side too (half-close aware). */
  echo(options?: BackendOptions): Promise<TestBackend> {
    return this.backend(echo, options);
  }

  /** Writes `name` and a newline on connect, then echoes: shows which backend took a session. */
  async named(name: string, options?: BackendOptions): Promise<TestBackend & { readonly name: string }> {
    return Object.assign(await this.backend(greet(`${name}\n`, 'echo'), options), { name });
  }

  /**
   * Sends `data` first, as SMTP, FTP or MySQL servers do, then echoes (`after: 'echo'`,
   * default), ends the connection (`'end'`), or holds it open, answering nothing (`'hold'`).
   */
  greeting(
    data: string | Buffer,
    options: BackendOptions & { after?: AfterGreeting } = {},
  ): Promise<TestBackend> {
    return this.backend(greet(data, options.after ?? 'echo'), options);
  }

  /** A port nothing listens on: connects fail with ECONNREFUSED. */
  refusing(host?: string): Promise<RefusingBackend> {
    return this.#keep(startRefusing(host));
  }

  /** Accepts, then resets (RST) every connection: at once, or after `delay` ms without a byte. */
  resetting(options: BackendOptions & { delay?: number } = {}): Promise<TestBackend> {
    return this.backend(reset(options.delay ?? 0), options);
  }

  /**
   * Accepts and reads nothing until `resume()`: what the proxy sends piles up in kernel
   * buffers and the proxy must stop reading from the client (backpressure).
   */
  slowReading(options?: BackendOptions): Promise<SlowReadingBackend> {
    return this.#keep(startSlowReading(options));
  }

  /** A port whose connects hang until the connect timeout (ETIMEDOUT). Needs `python3`. */
  blackhole(): Promise<Blackhole> {
    return this.#keep(startBlackhole());
  }

  /**
   * Connects a client to `target` (an address, a TestProxy or a backend) and resolves once
   * connected. Rejects when the connect fails (refused, timed out).
   */
  async connect(target: string | { readonly address: string }, options?: ClientOptions): Promise<TestClient> {
    const client = await connectClient(typeof target === 'string' ? target : target.address, options);
    this.#clients.push(client);
    return client;
  }

  /**
   * Wraps a socket you connected yourself (a `tls.connect()` client, a raw socket with other
   * options) in a TestClient: the same read/expect/closed helpers, destroyed on `close()`.
   * Adopt it before it can receive data (right after connect), as bytes that arrived earlier
   * are not seen.
   */
  adopt<S extends Socket>(socket: S): TestClient<S> {
    const client = new TestClient(socket);
    this.#clients.push(client);
    return client;
  }

  /** Runs `fn` on `close()`, after everything the kit started itself (last deferred first). */
  defer(fn: () => unknown): void {
    this.#deferred.push(fn);
  }

  /** Closes `thing` on `close()` (a server, a TLS fixture, another process); returns it. */
  track<T extends Closeable>(thing: T): T {
    this.defer(() => thing.close());
    return thing;
  }

  /**
   * Stops everything started since the last `close()`: clients destroyed, proxies stopped
   * (sessions closed at once), backends closed, deferred work run. Every step runs even when
   * one fails; the failures are thrown together afterwards. Bound: `afterEach(kit.close)`.
   */
  readonly close = async (): Promise<void> => {
    const errors: unknown[] = [];
    const attempt = async (steps: Array<() => unknown>) => {
      const results = await Promise.allSettled(steps.map(async (step) => step()));
      for (const r of results) if (r.status === 'rejected') errors.push(r.reason);
    };
    await attempt(this.#clients.splice(0).map((c) => () => c.destroy()));
    await attempt(this.#proxies.splice(0).map((p) => () => p.stop(0)));
    await attempt(this.#backends.splice(0).map((b) => () => b.close()));
    for (const fn of this.#deferred.splice(0).reverse()) await attempt([fn]);
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'closing the test kit failed');
  };

  async #keep<T extends Closeable>(starting: Promise<T>): Promise<T> {
    const thing = await starting;
    this.#backends.push(thing);
    return thing;
  }
}

/** A new, empty kit. Usually one per test file: `const kit = createTestKit(); afterEach(kit.close);` */
export function createTestKit(): TestKit {
  return new TestKit();
}
