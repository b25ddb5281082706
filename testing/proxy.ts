import { Writable } from 'node:stream';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Capacity } from '../core/capacity.js';
import { loadConfigText, Runtime as RuntimeClass } from '../core/index.js';
import type {
  BackendSpec,
  ClusterBridge,
  Runtime,
  RuntimeRole,
  Service,
  SwitchyardConfig,
} from '../plugin-sdk/index.js';

/** A duration in a config: milliseconds, or text such as `"250ms"`, `"5s"`, `"1m"`. */
export type Duration = number | string;

/** Something with an address: a kit backend (`kit.echo()`, `kit.refusing()`, ...) stands for `{ address }`. */
export interface Addressable {
  readonly address: string;
}

/** One backend in a test config: a spec, an address, or a kit backend. */
export type TestBackendEntry = BackendSpec | string | Addressable;

/** Plugins to enable: name (built-in, path or package) → options (`{}` or null for defaults). */
export type TestPlugins = Record<string, Record<string, unknown> | null>;

/** One service of a test config; the same keys as the YAML file (docs/configuration.md). */
export interface TestServiceConfig {
  /** Default (single-service configs only): `127.0.0.1:0`, a free port. */
  listen?: string | string[];
  backends?: TestBackendEntry[];
  connect_timeout?: Duration;
  idle_timeout?: Duration;
  retries?: number;
  drain_timeout?: Duration;
  max_connections?: number;
  tcp_nodelay?: boolean;
  plugins?: TestPlugins;
}

/**
 * A config as an object, shaped like the YAML file. It goes through the same loading as a
 * file: plugin schemas, defaults, durations and semantic checks, with the same errors.
 */
export interface TestConfig extends TestServiceConfig {
  services?: Record<string, TestServiceConfig>;
  log_level?: string;
  workers?: number | 'auto';
}

/** Pino levels, for `ProxyOptions.logs`. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * One log line the proxy wrote, parsed: pino's numeric `level` (30 info, 40 warn, ...), `msg`
 * ('' for a line without a message), `time`, and the fields and bindings (`service`, `plugin`).
 */
export type LogEntry = { level: number; msg: string; time: number; [field: string]: any };

/** Options of `kit.proxy()` and `loadConfig()`. */
export interface ProxyOptions {
  /**
   * Folder that plugin paths in the config (`./my-plugin`) resolve against, as a config
   * file's folder would. Default: the current directory.
   */
  baseDir?: string;
  /**
   * Record log lines at this level and above in `proxy.logs`. Without it the proxy is
   * silent, unless the environment variable SWITCHYARD_TEST_LOG names a level to print.
   */
  logs?: LogLevel;
  /** Default true. false: plugins are applied but nothing listens until `proxy.start()`. */
  start?: boolean;
  /**
   * The process session budget, as if the open files limit allowed this many concurrent
   * sessions (docs/os-tuning.md). Default: derived from the real limit.
   */
  sessionLimit?: number;
  /**
   * Runs the runtime as a cluster primary or worker (docs/multi-process.md), for plugins with
   * `runsIn`: a primary applies only `runsIn: 'any'` service plugins and binds no listener.
   */
  role?: RuntimeRole;
  /** The bridge a cluster role talks through, provided as `runtime.use(CLUSTER)`. */
  cluster?: ClusterBridge;
}

/** A running (or, with `start: false`, applied) Switchyard runtime in this process. */
export interface TestProxy {
  readonly runtime: Runtime;
  /** The first service (`default` in a single-service config). */
  readonly service: Service;
  /** The loaded config, after defaults and duration parsing. */
  readonly config: SwitchyardConfig;
  /**
   * The first service's first listener, e.g. `127.0.0.1:41234`; still known after `stop()`.
   * Throws before the start, and for a cluster primary (it binds nothing).
   */
  readonly address: string;
  /** Log lines recorded with the `logs` option (empty without it). */
  readonly logs: LogEntry[];
  /** A listener of a service by name (default the first service), e.g. for a `services:` config. */
  addressOf(service?: string, listener?: number): string;
  /** Starts listening; only for a proxy created with `start: false`. */
  start(): Promise<void>;
  /**
   * Graceful stop: sessions get `drainTimeout` ms (default 0: closed at once), then plugins'
   * stop hooks run. Safe to call twice; the kit calls it on `close()`.
   */
  stop(drainTimeout?: number): Promise<void>;
}

/**
 * Loads and validates a config as `switchyard --config` would, without starting anything:
 * for tests of a plugin's schema, defaults and option errors (`ConfigError` with line:col).
 */
export async function loadConfig(
  config: TestConfig | string,
  options: Pick<ProxyOptions, 'baseDir'> = {},
): Promise<SwitchyardConfig> {
  const text = typeof config === 'string' ? config : stringify(normalize(config));
  return loadConfigText(text, typeof config === 'string' ? 'test.yaml' : 'test-config.yaml', {
    baseDir: options.baseDir ?? process.cwd(),
  });
}

/** Object configs: a default listener on a free port, kit backends as `{ address }`. */
function normalize(config: TestConfig): Record<string, unknown> {
  const service = (s: TestServiceConfig) => ({
    ...s,
    ...(s.backends && {
      backends: s.backends.map((b) =>
        typeof b === 'string' ? { address: b } : isSpec(b) ? b : { address: b.address },
      ),
    }),
  });
  const out: Record<string, unknown> = service(config);
  if (config.services === undefined) out.listen ??= '127.0.0.1:0';
  else out.services = Object.fromEntries(Object.entries(config.services).map(([k, v]) => [k, service(v)]));
  return out;
}

/** A plain spec object (not one of the kit's backend classes). */
function isSpec(b: BackendSpec | Addressable): b is BackendSpec {
  const proto = Object.getPrototypeOf(b);
  return proto === Object.prototype || proto === null;
}

/** @internal Creates the runtime; the kit tracks what this returns. */
export async function createProxy(
  config: TestConfig | string,
  options: ProxyOptions = {},
): Promise<TestProxy> {
  const loaded = await loadConfig(config, options);
  const logs: LogEntry[] = [];
  const log =
    options.logs === undefined
      ? pino({ level: process.env.SWITCHYARD_TEST_LOG ?? 'silent' })
      : pino({ level: options.logs }, recorder(logs));
  const capacity = options.sessionLimit === undefined ? undefined : new Capacity(options.sessionLimit, log);
  const runtime = await RuntimeClass.create(loaded, log, {
    capacity,
    role: options.role,
    cluster: options.cluster,
  });
  let started: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  // Taken once listening: a stopped proxy's address still says where it was (to test refusals).
  let bound: Map<string, string[]> | undefined;
  const proxy: TestProxy = {
    runtime,
    service: runtime.defaultService,
    config: loaded,
    logs,
    get address() {
      return proxy.addressOf();
    },
    addressOf(name, listener = 0) {
      const service = runtime.service(name);
      if (!service)
        throw new Error(`no service "${name}" (services: ${[...runtime.services.keys()].join(', ')})`);
      const address = bound?.get(service.name)?.[listener];
      if (address === undefined)
        throw new Error(
          `service ${service.name} has no listener #${listener} (not started, or a cluster primary)`,
        );
      return address;
    },
    start() {
      if (started) throw new Error('the test proxy was started already');
      started = runtime.start().then(
        () => {
          bound = new Map([...runtime.services].map(([n, s]) => [n, s.addresses()]));
        },
        (err: unknown) => {
          // The runtime stopped what it had started; nothing is left for stop() to do.
          stopped = Promise.resolve();
          throw err;
        },
      );
      return started;
    },
    stop(drainTimeout = 0) {
      stopped ??= runtime.stop(drainTimeout);
      return stopped;
    },
  };
  return proxy;
}

/** A pino destination that parses each line into `logs`. */
function recorder(logs: LogEntry[]): Writable {
  return new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) {
        if (line === '') continue;
        const entry = JSON.parse(line) as LogEntry;
        entry.msg ??= '';
        logs.push(entry);
      }
      done();
    },
  });
}
