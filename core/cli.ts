import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { Logger } from 'pino';
import { runWorker } from './cluster/worker.js';
import { configFromPrimary } from './cluster/worker-config.js';
import { logLevels } from './config/core-schema.js';
import { ConfigError, formatIssue } from './config/errors.js';
import { loadConfigInThread } from './config/load-thread.js';
import type { SwitchyardConfig } from './config/types.js';
import { ENDPOINTS, type Endpoint, endpointFields } from './endpoints.js';
import { armHardStop, DEFAULT_STOP_GRACE } from './hard-stop.js';
import { createLogger, rawLineWriter, wantsPretty } from './logger.js';
import { MALLOC_TUNABLE, mallocTuningState, withMallocTuning } from './malloc-tuning.js';
import { workerCount } from './os-limits.js';
import { reloadSingleProcess } from './reload.js';
import { Runtime } from './runtime.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** Exit codes: 0 ok, 1 runtime failure (e.g. cannot bind), 2 invalid config. */
export async function main(argv: string[]): Promise<void> {
  // `ctl` is a client of a running proxy: it shares no option with the proxy itself.
  // Imported only when used, as are validate's dry run and the cluster primary: a proxy's
  // data plane keeps in its heap only the modules it runs (core/config/load-thread.ts says why).
  if (argv[2] === 'ctl') await (await import('./ctl/commands.js')).runCtl(argv);
  const program = new Command()
    .name('switchyard')
    .description('A plugin-based TCP (layer-4) proxy and load balancer')
    .version(pkg.version, '-v, --version')
    .enablePositionalOptions()
    .option('-c, --config <file>', 'config file', 'config.yaml')
    .addOption(new Option('-l, --log-level <level>', 'log level (overrides the config)').choices(logLevels))
    .option('--pretty', 'human-readable logs (default on a terminal)')
    .option('--no-pretty', 'JSON logs even on a terminal')
    .addHelpText('after', '\nswitchyard ctl --help    the admin API of a running proxy from a shell')
    .action(async (opts: { config: string; logLevel?: string; pretty?: boolean }) => {
      await run(opts);
    });
  program
    .command('validate')
    .description(
      'check a config file as a start would, without listening or connecting, and exit: 0 valid, 2 invalid',
    )
    .option('-c, --config <file>', 'config file', 'config.yaml')
    .action(async (opts: { config: string }) => {
      const config = await loadOrExit(opts.config);
      const { dryRun } = await import('./dry-run.js');
      const problem = await dryRun(config);
      if (problem !== undefined) {
        process.stderr.write(`${opts.config}: ${problem}\n`);
        process.exit(2);
      }
      const services = config.services.map(
        (s) =>
          `${s.name} (${s.listen.length > 0 ? s.listen.join(', ') : 'pool'} → ${s.backends.length} backends)`,
      );
      process.stdout.write(`${opts.config}: valid; services: ${services.join('; ')}\n`);
      // Plugins applied for the check may hold timers or handles; nothing else is left to do.
      process.exit(0);
    });
  await program.parseAsync(argv);
}

async function loadOrExit(file: string) {
  try {
    return await loadConfigInThread(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const issue of err.issues) process.stderr.write(`${formatIssue(issue)}\n`);
      process.stderr.write(`${err.issues.length} problem${err.issues.length === 1 ? '' : 's'} in ${file}\n`);
      process.exit(2);
    }
    throw err;
  }
}

async function run(opts: { config: string; logLevel?: string; pretty?: boolean }): Promise<void> {
  if (cluster.isWorker) {
    // A worker runs its generation's config as the primary loaded it (./cluster/worker-config.ts).
    const config = await configFromPrimary();
    const log = createLogger({ level: opts.logLevel ?? config.log_level ?? 'info', pretty: opts.pretty });
    keepRunningOnBugs(log);
    await runWorker(
      config,
      log.child({ worker: cluster.worker?.id, generation: Number(process.env.SWITCHYARD_GENERATION) }),
    );
    return;
  }
  const config = await loadOrExit(opts.config);
  const log = createLogger({ level: opts.logLevel ?? config.log_level ?? 'info', pretty: opts.pretty });
  const pretty = wantsPretty({ pretty: opts.pretty });
  const workers = workerCount(config.workers);
  if (workers > 1) {
    keepRunningOnBugs(log);
    await runPrimary(config, workers, log, pretty);
    return;
  }
  let runtime: Runtime;
  try {
    runtime = await Runtime.create(config, log);
    await runtime.start();
  } catch (err) {
    exitOnStartFailure(log, err);
    return;
  }
  const allocator = mallocTuningState();
  log.info(
    {
      version: pkg.version,
      services: [...runtime.services.values()].map((s) => ({
        name: s.name,
        listen: s.addresses(),
        backends: s.backends.list().map((b) => (b.weight === 1 ? b.address : `${b.address}*${b.weight}`)),
        plugins: s.config.plugins.map((p) => p.name),
      })),
      plugins: config.plugins.map((p) => p.name),
      sessionLimit: Number.isFinite(runtime.capacity.limit) ? runtime.capacity.limit : null,
      allocator,
      // One process re-executes itself to tune glibc (core/malloc-tuning.ts); Node 20 cannot.
      ...(allocator === 'needs-newer-node' && {
        allocatorHint: `tuning glibc for socket buffers needs Node >= 22.15 (process.execve); set GLIBC_TUNABLES=${MALLOC_TUNABLE} in the environment instead (docs/os-tuning.md)`,
      }),
      ...endpointFields(runtime.contributions<Endpoint>(ENDPOINTS)),
    },
    'switchyard started',
  );

  // SIGHUP: the config is read again and applied where it can be (core/reload.ts); plugins
  // such as tls-listener reload their files on it too. One reload at a time.
  let current = config;
  let reloading = false;
  process.on('SIGHUP', () => {
    if (reloading) return log.warn('reload already in progress; SIGHUP ignored');
    reloading = true;
    log.info('SIGHUP received: reloading the config');
    reloadSingleProcess(runtime, current, log)
      .then((next) => {
        current = next;
      })
      .catch((err) => log.error({ err }, 'reload failed'))
      .finally(() => {
        reloading = false;
      });
  });
  stopOnSignals(log, 'stopping: no new connections, draining sessions', () => runtime.stop(), {
    deadlineMs: longestDrain(config) + stopGrace(config),
    graceMs: stopGrace(config),
  });
  keepRunningOnBugs(log);
}

/**
 * A start that failed (cannot bind, a plugin's start threw or timed out): one fatal line that
 * says what and where — the stack only at debug level, where it helps a plugin's author —
 * flushed, then exit 1.
 */
function exitOnStartFailure(log: Logger, err: unknown): void {
  const e = err as Error & { code?: unknown };
  const fields: Record<string, unknown> = typeof e.code === 'string' ? { code: e.code } : {};
  if (log.isLevelEnabled('debug')) fields.err = err;
  log.fatal(fields, `start failed: ${e.message}`);
  log.flush?.();
  setTimeout(() => process.exit(1), 50);
}

/** The longest drain_timeout of any service: how long a graceful stop may wait for sessions. */
function longestDrain(config: SwitchyardConfig): number {
  return Math.max(0, ...config.services.map((s) => s.drain_timeout));
}

function stopGrace(config: SwitchyardConfig): number {
  return config.stop_grace ?? DEFAULT_STOP_GRACE;
}

/**
 * SIGTERM/SIGINT: graceful stop, exit 0 when done (1 on error); a second signal exits at once
 * after `onForce` (e.g. killing workers). The stop is bounded: past `bound.deadlineMs` the
 * process exits 1 whatever it waits for (core/hard-stop.ts).
 */
function stopOnSignals(
  log: Logger,
  message: string,
  stop: () => Promise<void>,
  bound: { deadlineMs: number; graceMs: number },
  onForce?: () => void,
): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      onForce?.();
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, message);
    const stopped = stop();
    // After the stop began: listeners close and the drain starts without waiting for the thread.
    armHardStop(bound.deadlineMs, bound.graceMs, log, onForce);
    stopped.then(
      () => {
        log.info('stopped');
        log.flush?.();
        setTimeout(() => process.exit(0), 20);
      },
      (err) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** A bug in a plugin must not take every user's connections down with it. */
function keepRunningOnBugs(log: Logger): void {
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (kept running)'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (kept running)'));
}

/** `workers` > 1: this process is the cluster primary (docs/multi-process.md). */
async function runPrimary(
  config: SwitchyardConfig,
  workers: number,
  log: Logger,
  pretty: boolean,
): Promise<void> {
  const { ClusterPrimary } = await import('./cluster/primary.js');
  // Pretty logs: workers write JSON to the primary, which prints every line (core/cluster/worker-logs.ts).
  const primary = new ClusterPrimary(config, workers, log, pretty ? rawLineWriter(log) : undefined);
  let listening: Record<string, string[]>;
  try {
    listening = await primary.start();
  } catch (err) {
    exitOnStartFailure(log, err);
    return;
  }
  log.info(
    {
      version: pkg.version,
      workers,
      scheduling: primary.scheduling,
      pids: primary.pids(),
      services: [...primary.runtime.services.values()].map((s) => ({
        name: s.name,
        listen: listening[s.name] ?? [],
        backends: s.backends.list().map((b) => (b.weight === 1 ? b.address : `${b.address}*${b.weight}`)),
      })),
      plugins: config.plugins.map((p) => p.name),
      // The workers' allocator: the primary hands them the tunable at fork on any Node.
      allocator: mallocTuningState(withMallocTuning(process.env)),
      ...endpointFields(primary.runtime.contributions<Endpoint>(ENDPOINTS)),
    },
    'switchyard started (cluster primary)',
  );
  process.on('SIGHUP', () => {
    log.info('SIGHUP received: reloading the config');
    primary.reload().catch((err) => log.error({ err }, 'reload failed'));
  });
  stopOnSignals(
    log,
    'stopping: workers stop accepting and drain',
    () => primary.stop(),
    // The primary kills workers still draining at drain_timeout + stop_grace; then its own
    // plugins get a second to stop.
    { deadlineMs: longestDrain(config) + stopGrace(config) + 1000, graceMs: stopGrace(config) },
    () => {
      for (const pid of primary.pids()) safeKill(pid);
    },
  );
}

function safeKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
