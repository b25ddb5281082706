/**
 * glibc's allocator, tuned for a proxy's socket buffers.
 *
 * Every `read()` of a Node socket allocates a fresh 64 KiB buffer with malloc; V8 frees them in
 * batches when it collects (tens of MiB at once under a bulk stream). glibc then finds a large
 * free block at the top of its heap, above `trim_threshold` (128 KiB by default), and gives it
 * back to the kernel with `brk()`; the next buffers fault the same pages back in, one minor
 * fault per 4 KiB. Measured through one proxy process and 3 GB of iperf3: 420,000–480,000
 * page faults on Node 20 (30,000–210,000 on Node 24) and twice the kernel time per GB of the
 * naive pipe proxy; with `trim_threshold` at 64 MiB, ~10,000–20,000 faults and 2x the
 * throughput on Node 20 (docs/benchmarks.md). The price: up to 64 MiB of freed memory stays
 * resident per process after a burst of traffic, as HAProxy's pools keep theirs.
 *
 * glibc reads GLIBC_TUNABLES once, at process start, so the setting has to be in the
 * environment before the process exists: cluster workers get it from the primary's fork; a
 * single process re-executes itself once at start (`process.execve`, Node >= 22.15 / 23.11,
 * same pid). An operator's own `glibc.malloc.trim_threshold` wins, and
 * `SWITCHYARD_MALLOC_TUNING=off` leaves the allocator alone. Other C libraries (musl) ignore it.
 */

/** The tunable and its value (64 MiB). */
export const MALLOC_TUNABLE = 'glibc.malloc.trim_threshold=67108864';
/** `off` leaves glibc's defaults. */
export const MALLOC_TUNING_ENV = 'SWITCHYARD_MALLOC_TUNING';
/** Set by the re-executed process: it already passed here once, never again. */
const REEXEC_MARK = 'SWITCHYARD_MALLOC_REEXEC';

/** What a start can say about the allocator in its log. */
export type MallocTuning =
  /** GLIBC_TUNABLES carries our trim_threshold. */
  | 'applied'
  /** The operator set glibc.malloc.trim_threshold themselves: theirs is used. */
  | 'operator'
  /** SWITCHYARD_MALLOC_TUNING=off. */
  | 'off'
  /** Not Linux with glibc: nothing to tune. */
  | 'not-glibc'
  /** One process on a Node without process.execve (before 22.15 / 23.11). */
  | 'needs-newer-node'
  /** Started with an IPC channel (a test or benchmark harness): not re-executed. */
  | 'not-applied';

type Env = Record<string, string | undefined>;

/** True when the tunables string sets trim_threshold (whoever set it). */
function setsTrimThreshold(tunables: string | undefined): boolean {
  return tunables !== undefined && /(^|:)glibc\.malloc\.trim_threshold=/.test(tunables);
}

/** The environment with our tunable added, unless the operator set one or turned it off. */
export function withMallocTuning(env: Env): Env {
  if (env[MALLOC_TUNING_ENV] === 'off' || setsTrimThreshold(env.GLIBC_TUNABLES)) return env;
  const tunables = env.GLIBC_TUNABLES ? `${env.GLIBC_TUNABLES}:${MALLOC_TUNABLE}` : MALLOC_TUNABLE;
  return { ...env, GLIBC_TUNABLES: tunables };
}

/** glibc's version when this process runs on glibc, else undefined. */
function glibcVersion(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  return header?.glibcVersionRuntime;
}

/** What this process runs with (for the start-up log line). */
export function mallocTuningState(env: Env = process.env): MallocTuning {
  if (env[MALLOC_TUNING_ENV] === 'off') return 'off';
  if (glibcVersion() === undefined) return 'not-glibc';
  if (setsTrimThreshold(env.GLIBC_TUNABLES)) {
    return (env.GLIBC_TUNABLES ?? '').includes(MALLOC_TUNABLE) ? 'applied' : 'operator';
  }
  return typeof (process as { execve?: unknown }).execve === 'function' ? 'not-applied' : 'needs-newer-node';
}

/**
 * Called first thing by the CLI of a proxy start: replaces this process with itself plus the
 * tunable (same pid, same arguments, same descriptors) when it can and should. Returns when
 * it does not (already tuned, turned off, not glibc, no `process.execve`, a cluster worker or a
 * process with an IPC channel, whose descriptors an exec would leave half-open).
 */
export function reexecWithMallocTuning(): void {
  const env = process.env;
  if (env[REEXEC_MARK] !== undefined || env.NODE_UNIQUE_ID !== undefined || process.channel !== undefined)
    return;
  const execve = (process as { execve?: (file: string, args: string[], env: Env) => never }).execve;
  if (typeof execve !== 'function' || glibcVersion() === undefined) return;
  const tuned = withMallocTuning(env);
  if (tuned === env) return;
  execve.call(process, process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    ...tuned,
    [REEXEC_MARK]: '1',
  });
}
