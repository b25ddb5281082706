import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../core/config/load.js';
import { Runtime } from '../../core/runtime.js';
import type { Service } from '../../core/service.js';
import type { AdminApi } from '../../plugins/admin-api/index.js';
import type { HealthCheckApi } from '../../plugins/health-check/api.js';
import { greet, startBackend, type TestBackend } from '../../testing/backends.js';
import { exchange, waitFor } from '../../testing/index.js';

const startNamed = (name: string) => startBackend(greet(`${name}\n`, 'echo'));

/**
 * A plugin's exception in a registry or status tap is contained by the hook (CONTAINED_HOOKS
 * in core/hooks.ts): logged with the hook and the plugin, the other taps still run, and the
 * caller — an admin route, a health-check timer, a worker's IPC handler — finishes its work.
 * Before, the exception escaped into the caller: the admin API answered 500 after changing the
 * registry, and a throw in a health-check timer crashed the process.
 */

let runtime: Runtime | undefined;
const servers: TestBackend[] = [];

afterEach(async () => {
  await runtime?.stop(0);
  runtime = undefined;
  for (const s of servers.splice(0)) await s.close();
});

/** Starts a runtime whose error log lines land in `logs`. */
async function start(
  yaml: string,
): Promise<{ service: Service; logs: Record<string, any>[]; address: string }> {
  const logs: Record<string, any>[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  runtime = await Runtime.create(await loadConfigText(yaml, 'test.yaml'), log);
  await runtime.start();
  const service = runtime.defaultService;
  return { service, logs, address: service.addresses()[0]! };
}

/** Taps `hook` twice: a throwing plugin, then one that records what it saw. */
function throwingThenRecording(service: Service, hook: 'backendAdded' | 'backendRemoved' | 'backendChanged') {
  const seen: string[] = [];
  service.hooks[hook].tap('boom', () => {
    throw new Error(`boom in ${hook}`);
  });
  service.hooks[hook].tap('after', (b) => {
    seen.push(b.address);
  });
  return seen;
}

describe('a throwing registry tap', () => {
  it('does not fail the admin call that changed the registry; later taps and traffic carry on', async () => {
    const a = await startNamed('a');
    const b = await startNamed('b');
    servers.push(a, b);
    const { service, logs, address } = await start(`
listen: 127.0.0.1:0
backends: [{ address: ${a.address} }]
plugins:
  admin-api: { listen: 127.0.0.1:0 }
`);
    const added = throwingThenRecording(service, 'backendAdded');
    const changed = throwingThenRecording(service, 'backendChanged');
    const removed = throwingThenRecording(service, 'backendRemoved');
    const base = `http://${runtime!.use<AdminApi>('admin-api')!.address()}`;
    const call = (method: string, path: string, body?: unknown) =>
      fetch(base + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    expect((await call('POST', '/backends', { address: b.address })).status).toBe(201);
    expect(added).toEqual([b.address]);
    const replies = new Set<string>();
    for (let i = 0; i < 4; i++) replies.add((await exchange(address, 'x')).toString());
    expect(replies).toEqual(new Set(['a\nx', 'b\nx']));

    const path = `/backends/${encodeURIComponent(b.address)}`;
    expect((await call('PATCH', path, { weight: 3 })).status).toBe(200);
    expect(changed).toEqual([b.address]);
    expect(service.backends.get(b.address)!.weight).toBe(3);
    expect((await call('DELETE', path)).status).toBe(200);
    expect(removed).toEqual([b.address]);
    expect(service.backends.get(b.address)).toBeUndefined();
    expect((await exchange(address, 'y')).toString()).toBe('a\ny');

    const contained = logs.filter((l) => l.msg === 'a plugin hook threw; the other taps still ran');
    expect(contained.map((l) => [l.hook, l.plugin, l.err.message])).toEqual([
      ['backendAdded', 'boom', 'boom in backendAdded'],
      ['backendChanged', 'boom', 'boom in backendChanged'],
      ['backendRemoved', 'boom', 'boom in backendRemoved'],
    ]);
  });
});

describe('a throwing backendStatus tap', () => {
  it('is contained in the health-check timer that set the status; the down backend still gets no traffic', async () => {
    const a = await startNamed('a');
    const b = await startNamed('b');
    servers.push(a, b);
    const { service, logs, address } = await start(`
listen: 127.0.0.1:0
retries: 1
backends: [{ address: ${a.address} }, { address: ${b.address} }]
plugins:
  health-check: { interval: 40, jitter: 0, fall: 1, rise: 1, initial: fully-up }
`);
    const statuses: string[] = [];
    service.hooks.backendStatus.tap('boom', () => {
      throw new Error('boom in backendStatus');
    });
    service.hooks.backendStatus.tap('after', (backend, source, status) => {
      statuses.push(`${backend.address} ${source} ${status}`);
    });

    // The backend goes away; the health check's timer marks it down and calls the taps.
    await b.close();
    servers.splice(servers.indexOf(b), 1);
    const api = service.use<HealthCheckApi>('health-check')!;
    await waitFor(() => !api.isHealthy(service.backends.get(b.address)!), 5000, 'b marked down');
    expect(statuses).toEqual([`${b.address} health-check down`]);
    for (let i = 0; i < 3; i++) expect((await exchange(address, 'x')).toString()).toBe('a\nx');
    expect(logs.some((l) => l.hook === 'backendStatus' && l.plugin === 'boom')).toBe(true);
  });
});
