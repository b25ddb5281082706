import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editorSchema } from '../../core/config/editor-schema.js';
import { ConfigError } from '../../core/config/errors.js';
import { loadConfigText } from '../../core/config/load.js';
import type { SwitchyardConfig } from '../../core/config/types.js';
import { durationSchema, MAX_DURATION_MS, parseDuration } from '../../plugin-sdk/index.js';
import { CertFactory } from '../fixtures/tls/certs.js';

/**
 * Node.js runs a timer longer than 2^31 - 1 ms after 1 ms (TimeoutOverflowWarning), so a
 * duration above that must be refused by the schema, never clamped at run time: with
 * `drain_timeout: 600h` a graceful stop used to close every session 5 ms after it began.
 */

/** Every duration key of the core and the built-in plugins, found by walking the schema. */
function* durationKeys(node: unknown, path: string[]): Generator<string[]> {
  if (node === null || typeof node !== 'object') return;
  const schema = node as Record<string, unknown>;
  if (schema['x-duration'] === true) yield path;
  for (const [key, sub] of Object.entries((schema.properties ?? {}) as Record<string, unknown>))
    if (key !== 'services') yield* durationKeys(sub, [...path, key]); // services repeat the root's keys
  if (typeof schema.additionalProperties === 'object')
    yield* durationKeys(schema.additionalProperties, [...path, '*']);
  if (schema.items !== undefined) yield* durationKeys(schema.items, [...path, '[]']);
  for (const k of ['anyOf', 'oneOf', 'allOf'])
    for (const sub of (schema[k] ?? []) as unknown[]) yield* durationKeys(sub, path);
}

/** Listed so a key that stops being a checked duration (or a new one) shows up in review. */
const EXPECTED = [
  'connect_timeout',
  'idle_timeout',
  'drain_timeout',
  'plugin_timeout',
  'stop_grace',
  'plugins.admin-api.idle_timeout',
  'plugins.admin-api.header_timeout',
  'plugins.admin-api.request_timeout',
  'plugins.backend-limits.queue_timeout',
  'plugins.circuit-breaker.window',
  'plugins.circuit-breaker.base_ejection_time',
  'plugins.circuit-breaker.max_ejection_time',
  'plugins.circuit-breaker.decay_interval',
  'plugins.connection-pool.idle_ttl',
  'plugins.connection-pool.connect_timeout',
  'plugins.connection-pool.backoff_base',
  'plugins.connection-pool.backoff_max',
  'plugins.dashboard.refresh',
  'plugins.dashboard.history.interval',
  'plugins.dashboard.history.window',
  'plugins.dns-discovery.hold_empty',
  'plugins.dns-discovery.max_refresh',
  'plugins.dns-discovery.min_refresh',
  'plugins.dns-discovery.refresh',
  'plugins.dns-discovery.timeout',
  'plugins.etcd-registry.apply_timeout',
  'plugins.etcd-registry.request_timeout',
  'plugins.etcd-registry.resync_after',
  'plugins.health-check.interval',
  'plugins.health-check.timeout',
  'plugins.health-check.fast_interval',
  'plugins.health-check.down_interval',
  'plugins.keep-alive.client.initial_delay',
  'plugins.keep-alive.upstream.initial_delay',
  'plugins.keep-alive.client_idle_timeout',
  'plugins.keep-alive.upstream_idle_timeout',
  'plugins.keep-alive.client_fin_timeout',
  'plugins.keep-alive.upstream_fin_timeout',
  'plugins.metrics.worker_timeout',
  'plugins.proxy-protocol.timeout',
  'plugins.slow-start.window',
  'plugins.sni-router.timeout',
  'plugins.source-limits.log_interval',
  'plugins.tls-listener.handshake_timeout',
  'plugins.tls-listener.watch_delay',
];

/** Plugins another plugin needs to be enabled with it, and options a plugin cannot do without. */
const COMPANIONS: Record<string, Record<string, unknown>> = {
  dashboard: { 'admin-api': {} },
  metrics: { 'admin-api': {} },
};

/**
 * Options a plugin cannot be enabled without (its schema or `check` refuses it otherwise):
 * sni-router's default route, tls-listener's certificate files (created in beforeAll), and
 * for dns-discovery a max_refresh the other refresh durations may reach.
 */
const REQUIRED: Record<string, Record<string, unknown>> = {
  'sni-router': { default: 'default' },
  'source-limits': { max_connections: 1 },
  'dns-discovery': { name: 'web.test', port: 80, max_refresh: MAX_DURATION_MS },
};
let certs: CertFactory | undefined;
beforeAll(async () => {
  certs = await CertFactory.create();
  REQUIRED['tls-listener'] = { ...(await certs.leaf('server', { cn: 'durations.test' })) };
});
afterAll(async () => {
  await certs?.cleanup();
});

/** A config that sets `path` to `value`, as JSON (which is YAML). */
function configWith(path: string[], value: unknown): string {
  const doc: Record<string, unknown> = { listen: '127.0.0.1:0', backends: [{ address: '127.0.0.1:9' }] };
  let at = doc;
  if (path[0] === 'plugins') doc.plugins = { ...COMPANIONS[path[1]!], [path[1]!]: { ...REQUIRED[path[1]!] } };
  for (const key of path.slice(0, -1)) {
    at[key] = (at[key] as Record<string, unknown> | undefined) ?? {};
    at = at[key] as Record<string, unknown>;
  }
  at[path[path.length - 1]!] = value;
  return JSON.stringify(doc);
}

/** The loaded value at `path`: core keys from the service, plugin options from the plugin's use. */
function loadedValue(config: SwitchyardConfig, path: string[]): unknown {
  const service = config.services[0]!;
  if (path[0] !== 'plugins')
    return path[0]! in service
      ? (service as unknown as Record<string, unknown>)[path[0]!]
      : (config as unknown as Record<string, unknown>)[path[0]!];
  const use = [...service.plugins, ...config.plugins].find((u) => u.name === path[1]);
  let at: unknown = use?.options;
  for (const key of path.slice(2)) at = (at as Record<string, unknown>)[key];
  return at;
}

async function issuesOf(text: string): Promise<ConfigError['issues']> {
  try {
    await loadConfigText(text, 'durations.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

describe('durations are capped at what a Node.js timer can hold', () => {
  it('the cap is the largest delay setTimeout keeps (2^31 - 1 ms)', () => {
    expect(MAX_DURATION_MS).toBe(2 ** 31 - 1);
    expect(parseDuration('596h')).toBeLessThanOrEqual(MAX_DURATION_MS);
    expect(parseDuration('597h')).toBeGreaterThan(MAX_DURATION_MS);
    expect(durationSchema('Wait.', { default: '1s' })).toMatchObject({ default: '1s', 'x-duration': true });
  });

  it('finds every duration key of the core and the built-in plugins', async () => {
    const found = [...durationKeys(await editorSchema(), [])].map((p) => p.join('.'));
    expect(found.sort()).toEqual([...EXPECTED].sort());
  });

  describe.each(EXPECTED.map((key) => [key]))('%s', (key) => {
    const path = key.split('.');

    it('takes the limit, as a number and as text', async () => {
      const config = await loadConfigText(configWith(path, MAX_DURATION_MS), 'durations.yaml');
      expect(loadedValue(config, path)).toBe(MAX_DURATION_MS);
      const text = await loadConfigText(configWith(path, '596h'), 'durations.yaml');
      expect(loadedValue(text, path)).toBe(596 * 3_600_000);
    });

    it('refuses 1 ms over the limit, and "600h", saying where and why', async () => {
      for (const value of [MAX_DURATION_MS + 1, '600h', '3000000000ms']) {
        const issues = await issuesOf(configWith(path, value));
        expect(issues, String(value)).toHaveLength(1);
        expect(issues[0]!.path).toBe(path.join('.'));
        expect(issues[0]!.line).toBeGreaterThan(0);
        expect(issues[0]!.message).toContain('longer than a timer can wait');
        expect(issues[0]!.message).toContain(`at most ${MAX_DURATION_MS} ms`);
      }
    });
  });
});

describe('switchyard validate with drain_timeout: 600h', () => {
  const root = resolve(import.meta.dirname, '../..');
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-durations-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('exits 2 with the line, the key and the limit', async () => {
    await writeFile(
      join(dir, 'long.yaml'),
      'listen: 127.0.0.1:0\nbackends:\n  - address: 127.0.0.1:9\ndrain_timeout: 600h\n',
    );
    const r = spawnSync(
      process.execPath,
      [join(root, 'bin/switchyard.js'), 'validate', '--config', 'long.yaml'],
      {
        cwd: dir,
        encoding: 'utf8',
        timeout: 15_000,
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr + r.stdout).toMatch(
      /long\.yaml:4:16 +drain_timeout +is 2160000000 ms, longer than a timer can wait: at most 2147483647 ms/,
    );
  });
});
