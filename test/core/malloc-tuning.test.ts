import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { MALLOC_TUNABLE, withMallocTuning } from '../../core/malloc-tuning.js';
import { createTestKit, exchange } from '../../testing/index.js';

const BIN = fileURLToPath(new URL('../../bin/switchyard.js', import.meta.url));
const hasExecve = typeof (process as { execve?: unknown }).execve === 'function';
const onGlibc =
  process.platform === 'linux' &&
  (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header
    ?.glibcVersionRuntime !== undefined;

describe('withMallocTuning', () => {
  it('adds the trim threshold, after tunables already set', () => {
    expect(withMallocTuning({}).GLIBC_TUNABLES).toBe(MALLOC_TUNABLE);
    expect(withMallocTuning({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES).toBe(
      `glibc.malloc.arena_max=2:${MALLOC_TUNABLE}`,
    );
  });

  it("keeps the operator's own trim threshold, and nothing when turned off", () => {
    const own = { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=1048576' };
    expect(withMallocTuning(own)).toBe(own);
    const off = { SWITCHYARD_MALLOC_TUNING: 'off' };
    expect(withMallocTuning(off)).toBe(off);
  });
});

/** The real CLI as users start it: pid, environment and start line of every proxy process. */
describe.skipIf(!onGlibc)('a proxy start (glibc)', () => {
  const kit = createTestKit();
  const dirs: string[] = [];
  const children: Array<ReturnType<typeof spawn>> = [];
  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit');
        c.kill('SIGTERM');
        await exited;
      }
    }
    await kit.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** Starts the CLI; resolves with its start line once it proxies. */
  const start = async (yaml: string, env: Record<string, string | undefined> = {}) => {
    const echo = await kit.echo();
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-malloc-'));
    dirs.push(dir);
    const config = join(dir, 'switchyard.yaml');
    writeFileSync(config, `${yaml}listen: 127.0.0.1:0\nbackends: [{ address: "${echo.address}" }]\n`);
    const child = spawn(process.execPath, [BIN, '--config', config, '--no-pretty', '--log-level', 'info'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GLIBC_TUNABLES: undefined, SWITCHYARD_MALLOC_TUNING: undefined, ...env },
    });
    children.push(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const end = Date.now() + 20_000;
    while (!/switchyard started/.test(out) && Date.now() < end && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 25));
    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const started = lines.find((l) => String(l.msg).startsWith('switchyard started'));
    if (started === undefined) throw new Error(`the proxy did not start: ${out}`);
    const services = started.services as Array<{ listen: string[] }>;
    const address = services[0]!.listen[0]!;
    expect((await exchange(address, 'through')).toString()).toBe('through');
    return { child, started };
  };
  const tunablesOf = (pid: number) =>
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .find((v) => v.startsWith('GLIBC_TUNABLES='));

  it.runIf(hasExecve)(
    'one process re-executes itself once with the tunable: same pid, same arguments',
    async () => {
      const { child, started } = await start('');
      expect(started.pid).toBe(child.pid);
      expect(started.allocator).toBe('applied');
      expect(tunablesOf(child.pid!)).toBe(`GLIBC_TUNABLES=${MALLOC_TUNABLE}`);
    },
  );

  it.skipIf(hasExecve)(
    'one process on a Node without process.execve says what to set, in its start line',
    async () => {
      const { child, started } = await start('');
      expect(started.allocator).toBe('needs-newer-node');
      expect(started.allocatorHint).toContain(`GLIBC_TUNABLES=${MALLOC_TUNABLE}`);
      expect(tunablesOf(child.pid!)).toBeUndefined();
    },
  );

  it("keeps the operator's setting, and leaves the allocator alone when turned off", async () => {
    const own = 'glibc.malloc.trim_threshold=1048576';
    const a = await start('', { GLIBC_TUNABLES: own });
    expect(a.started.allocator).toBe('operator');
    expect(tunablesOf(a.child.pid!)).toBe(`GLIBC_TUNABLES=${own}`);
    const b = await start('', { SWITCHYARD_MALLOC_TUNING: 'off' });
    expect(b.started.allocator).toBe('off');
    expect(tunablesOf(b.child.pid!)).toBeUndefined();
  });

  it('cluster workers get the tunable from the primary at fork, on any Node', async () => {
    const { started } = await start('workers: 2\nscheduling: rr\n');
    expect(started.allocator).toBe('applied');
    const workers = started.pids as number[];
    expect(workers).toHaveLength(2);
    for (const pid of workers) expect(tunablesOf(pid)).toContain(MALLOC_TUNABLE);
  });
});
