import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Capacity } from '../../core/capacity.js';
import { loadConfigText } from '../../core/config/load.js';
import {
  checkLimits,
  distinctDestinations,
  LISTEN_BACKLOG,
  type LimitInputs,
  portCount,
  readOsLimits,
  workerCount,
} from '../../core/os-limits.js';
import { Runtime } from '../../core/runtime.js';

const healthy: LimitInputs = {
  somaxconn: 4096,
  portRange: { low: 32768, high: 60999 },
  backlog: LISTEN_BACKLOG,
  sessionBudget: 9_900,
  services: [{ name: 'web', destinations: 2, maxSessions: Number.POSITIVE_INFINITY }],
};

describe('checkLimits: net.core.somaxconn', () => {
  it('warns when somaxconn is below the listen backlog, naming the value and the sysctl', () => {
    const messages = checkLimits({ ...healthy, somaxconn: 128 });
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('net.core.somaxconn is 128');
    expect(messages[0]).toContain('backlog of 511');
    expect(messages[0]).toContain('sysctl -w net.core.somaxconn=');
  });

  it('is quiet when somaxconn equals or exceeds the backlog, or is unknown', () => {
    expect(checkLimits({ ...healthy, somaxconn: 511 })).toEqual([]);
    expect(checkLimits({ ...healthy, somaxconn: 4096 })).toEqual([]);
    expect(checkLimits({ ...healthy, somaxconn: undefined })).toEqual([]);
  });
});

describe('checkLimits: ephemeral ports per backend destination', () => {
  // The default range holds 28,232 ports.
  it('warns when the session budget exceeds ports × destinations', () => {
    const messages = checkLimits({
      ...healthy,
      sessionBudget: 99_900,
      services: [{ name: 'web', destinations: 2, maxSessions: Number.POSITIVE_INFINITY }],
    });
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('service "web"');
    expect(messages[0]).toContain('99900 sessions');
    expect(messages[0]).toContain('56464 upstream connections');
    expect(messages[0]).toContain('net.ipv4.ip_local_port_range 32768-60999');
    expect(messages[0]).toContain('EADDRNOTAVAIL');
    expect(messages[0]).toContain('sysctl -w net.ipv4.ip_local_port_range=');
  });

  it('is quiet when ports × destinations cover the budget (boundary included)', () => {
    expect(checkLimits({ ...healthy, sessionBudget: 56_464 })).toEqual([]);
    expect(checkLimits({ ...healthy, sessionBudget: 56_465 })).toHaveLength(1);
  });

  it('uses the smaller of the process budget and the service max_connections', () => {
    const capped = { name: 'web', destinations: 1, maxSessions: 20_000 };
    expect(checkLimits({ ...healthy, sessionBudget: 99_900, services: [capped] })).toEqual([]);
    // Unknown open files limit: max_connections alone still bounds the service.
    const big = { name: 'web', destinations: 1, maxSessions: 40_000 };
    expect(
      checkLimits({ ...healthy, sessionBudget: Number.POSITIVE_INFINITY, services: [big] }),
    ).toHaveLength(1);
  });

  it('is quiet when nothing bounds the sessions, with no configured backends, or with no range read', () => {
    const unbounded = { name: 'web', destinations: 1, maxSessions: Number.POSITIVE_INFINITY };
    expect(
      checkLimits({ ...healthy, sessionBudget: Number.POSITIVE_INFINITY, services: [unbounded] }),
    ).toEqual([]);
    const dynamic = { name: 'web', destinations: 0, maxSessions: Number.POSITIVE_INFINITY };
    expect(checkLimits({ ...healthy, sessionBudget: 99_900, services: [dynamic] })).toEqual([]);
    expect(checkLimits({ ...healthy, sessionBudget: 99_900, portRange: undefined })).toEqual([]);
  });

  it('warns once per service that falls short, alongside somaxconn', () => {
    const messages = checkLimits({
      ...healthy,
      somaxconn: 128,
      portRange: { low: 60000, high: 60999 },
      sessionBudget: 2_500,
      services: [
        { name: 'a', destinations: 2, maxSessions: Number.POSITIVE_INFINITY },
        { name: 'b', destinations: 3, maxSessions: Number.POSITIVE_INFINITY },
        { name: 'c', destinations: 1, maxSessions: Number.POSITIVE_INFINITY },
      ],
    });
    expect(messages).toHaveLength(3);
    expect(messages[0]).toContain('somaxconn');
    expect(messages[1]).toContain('service "a"');
    expect(messages[2]).toContain('service "c"');
  });
});

describe('helpers', () => {
  it('counts ports inclusively', () => {
    expect(portCount({ low: 32768, high: 60999 })).toBe(28_232);
    expect(portCount({ low: 1024, high: 1024 })).toBe(1);
    expect(portCount({ low: 2000, high: 1000 })).toBe(0);
  });

  it('counts distinct backend destinations', () => {
    const spec = (address: string) => ({ address }) as never;
    expect(distinctDestinations([])).toBe(0);
    expect(
      distinctDestinations([
        spec('10.0.0.5:80'),
        spec('10.0.0.5:80'),
        spec('10.0.0.5:81'),
        spec('10.0.0.6:80'),
        spec('[::1]:80'),
        spec('App.local:80'),
        spec('app.local:80'),
      ]),
    ).toBe(5);
  });

  it('resolves the worker count', () => {
    expect(workerCount(3)).toBe(3);
    expect(workerCount('auto')).toBeGreaterThanOrEqual(1);
  });
});

describe('readOsLimits', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it.runIf(process.platform === 'linux')('reads sane values on this Linux machine', () => {
    const limits = readOsLimits();
    expect(limits.somaxconn).toBeGreaterThan(0);
    expect(limits.portRange).toBeDefined();
    const { low, high } = limits.portRange as { low: number; high: number };
    expect(low).toBeGreaterThanOrEqual(1);
    expect(high).toBeLessThanOrEqual(65535);
    expect(low).toBeLessThanOrEqual(high);
  });

  it('reads a /proc-like tree, and leaves missing or malformed files undefined', () => {
    dir = mkdtempSync(join(tmpdir(), 'os-limits-'));
    expect(readOsLimits(dir)).toEqual({ somaxconn: undefined, portRange: undefined });
    mkdirSync(join(dir, 'sys/net/core'), { recursive: true });
    mkdirSync(join(dir, 'sys/net/ipv4'), { recursive: true });
    writeFileSync(join(dir, 'sys/net/core/somaxconn'), '128\n');
    writeFileSync(join(dir, 'sys/net/ipv4/ip_local_port_range'), '32768\t60999\n');
    expect(readOsLimits(dir)).toEqual({ somaxconn: 128, portRange: { low: 32768, high: 60999 } });
    writeFileSync(join(dir, 'sys/net/core/somaxconn'), 'lots\n');
    writeFileSync(join(dir, 'sys/net/ipv4/ip_local_port_range'), '32768\n');
    expect(readOsLimits(dir)).toEqual({ somaxconn: undefined, portRange: undefined });
  });
});

describe('Runtime start-up warnings', () => {
  /** Builds (does not start) a runtime and returns the warning lines it logged. */
  async function warningsFor(yaml: string, role: 'single' | 'worker' = 'single'): Promise<string[]> {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line).msg as string);
        done();
      },
    });
    const log = pino({ level: 'warn' }, sink);
    const config = await loadConfigText(yaml, 'test.yaml', { baseDir: process.cwd() });
    await Runtime.create(config, log, { capacity: new Capacity(1_000_000, log), role });
    return lines.filter((msg) => msg.includes('ip_local_port_range') || msg.includes('somaxconn'));
  }

  const os = readOsLimits();
  const ports = os.portRange ? portCount(os.portRange) : undefined;
  const expectedSomaxconn = os.somaxconn !== undefined && os.somaxconn < LISTEN_BACKLOG ? 1 : 0;

  it.runIf(ports !== undefined && ports < 60_000)(
    'logs one line per service short of source ports, from the real /proc values and max_connections',
    async () => {
      const p = ports as number;
      const over = await warningsFor(
        `services:\n  tight:\n    listen: 127.0.0.1:0\n    max_connections: ${p + 1}\n` +
          `    backends: [{ address: 127.0.0.1:9 }]\n` +
          `  roomy:\n    listen: 127.0.0.1:0\n    max_connections: ${p + 1}\n` +
          `    backends: [{ address: 127.0.0.1:9 }, { address: 127.0.0.2:9 }]\n`,
      );
      expect(over).toHaveLength(1 + expectedSomaxconn);
      expect(over.find((m) => m.includes('ip_local_port_range'))).toContain('service "tight"');
      expect(
        await warningsFor(
          `listen: 127.0.0.1:0\nmax_connections: ${p}\nbackends: [{ address: 127.0.0.1:9 }]\n`,
        ),
      ).toHaveLength(expectedSomaxconn);
    },
  );

  it.runIf(ports !== undefined && ports < 60_000)(
    'multiplies the budget by the worker count in a worker',
    async () => {
      const perWorker = Math.ceil(((ports as number) + 1) / 2);
      const yaml = `workers: 2\nlisten: 127.0.0.1:0\nmax_connections: ${perWorker}\nbackends: [{ address: 127.0.0.1:9 }]\n`;
      expect(await warningsFor(yaml, 'single')).toHaveLength(expectedSomaxconn);
      expect(await warningsFor(yaml, 'worker')).toHaveLength(1 + expectedSomaxconn);
    },
  );
});
