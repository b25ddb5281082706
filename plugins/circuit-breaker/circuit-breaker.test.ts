import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange, type TestProxy, waitFor } from '../../testing/index.js';
import type { CircuitBreakerApi } from './api.js';

describe('circuit-breaker', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let proxy: TestProxy;

  const start = async (backends: string[], breaker: string, service = '') => {
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
${service}
backends:
${backends.map((b) => `  - address: ${b}`).join('\n')}
plugins:
  circuit-breaker:
${breaker
  .trim()
  .split('\n')
  .map((l) => `    ${l.trim()}`)
  .join('\n')}
`);
    return proxy.service.use<CircuitBreakerApi>('circuit-breaker')!;
  };
  const backend = (address: string) => proxy.service.backends.get(address)!;
  /** Resolves with what the client received, or `reset` when the proxy reset it. */
  const ask = (payload = 'x') => exchange(proxy.address, payload).then(String, () => 'reset');
  /** Like `ask` without the FIN: the core records the first close reason, and a FIN would win. */
  const askOpen = async () => {
    const client = await kit.connect(proxy);
    const { socket } = client;
    socket.write('x');
    let got = '';
    socket.on('data', (c) => {
      got += String(c);
      if (got.endsWith('x')) socket.end();
    });
    const { error } = await client.closed(10_000);
    return error === null ? got : 'reset';
  };
  const good = (name = 'good') => kit.named(name);

  it('opens after N refused connects, sends the backend nothing while open, and fails fast', async () => {
    const dead = (await kit.refusing()).address;
    const ok = await good();
    const api = await start(
      [dead, ok.address],
      'consecutive_failures: 3\nbase_ejection_time: 30s\njitter: 0\nmax_ejection_percent: 50',
    );
    expect(backend(dead).status['circuit-breaker']).toBe('closed');
    for (let i = 0; i < 20 && backend(dead).connectFailures < 3; i++) expect(await ask()).toBe('good\nx');
    expect(backend(dead).connectFailures).toBe(3);
    const snap = api.get(dead)!;
    expect(snap.state).toBe('open');
    expect(snap.lastReason).toBe('consecutive-failures');
    expect(snap.lastError).toBe('ECONNREFUSED');
    expect(snap.openMs).toBe(30_000);
    expect(backend(dead).status['circuit-breaker']).toBe('open');

    const retriesBefore = proxy.service.counters.retries;
    for (let i = 0; i < 20; i++) expect(await ask()).toBe('good\nx');
    expect(backend(dead).connectFailures).toBe(3);
    expect(proxy.service.counters.retries).toBe(retriesBefore);
    expect(api.counters.opened).toBe(1);
    expect(api.get(ok.address)!.state).toBe('closed');
  });

  it('goes half-open after the open time; a successful trial closes it', async () => {
    const refusing = await kit.refusing();
    const dead = refusing.address;
    const ok = await good();
    const api = await start(
      [dead, ok.address],
      'consecutive_failures: 2\nbase_ejection_time: 150ms\njitter: 0',
    );
    for (let i = 0; i < 20 && api.get(dead)!.state === 'closed'; i++) expect(await ask()).toBe('good\nx');
    expect(api.counters.opened).toBe(1);
    await waitFor(() => api.get(dead)!.state === 'half-open', 5000, 'half-open');
    expect(backend(dead).status['circuit-breaker']).toBe('half-open');

    // The backend comes back on the same port.
    await kit.backend((s) => s.resume().end('revived\n'), { port: refusing.port });

    const seen = new Set<string>();
    for (let i = 0; i < 20 && api.get(dead)!.state !== 'closed'; i++) seen.add(await ask());
    expect(api.get(dead)!.state).toBe('closed');
    expect(seen.has('revived\n')).toBe(true);
    expect(api.counters).toMatchObject({ opened: 1, halfOpened: 1, closed: 1, trials: 1 });
    expect(backend(dead).status['circuit-breaker']).toBe('closed');
    const after: string[] = [];
    for (let i = 0; i < 4; i++) after.push(await ask());
    expect(after).toContain('revived\n');
  });

  it('a failed trial re-opens the breaker for twice the time', async () => {
    const dead = (await kit.refusing()).address;
    const ok = await good();
    const api = await start(
      [dead, ok.address],
      'consecutive_failures: 2\nbase_ejection_time: 200ms\njitter: 0',
    );
    for (let i = 0; i < 20 && api.get(dead)!.state === 'closed'; i++) await ask();
    // Loosely: on a loaded machine the 200ms may be over already.
    expect(api.get(dead)).toMatchObject({ openMs: 200, ejections: 1, trips: 1 });

    await waitFor(() => api.get(dead)!.state === 'half-open', 5000, 'half-open');
    const failuresBefore = backend(dead).connectFailures;
    for (let i = 0; i < 20 && api.get(dead)!.state === 'half-open'; i++) expect(await ask()).toBe('good\nx');
    // Exactly one trial went to the dead backend (half_open_max 1), then it opened again.
    expect(backend(dead).connectFailures).toBe(failuresBefore + 1);
    const reopened = api.get(dead)!;
    expect(reopened).toMatchObject({ openMs: 400, ejections: 2, trips: 2, lastReason: 'half-open-failure' });
    expect(reopened.state).not.toBe('closed');

    await waitFor(() => api.get(dead)!.state === 'half-open', 5000, 'second half-open');
    expect(Date.now() - reopened.openedAt).toBeGreaterThanOrEqual(390);
    expect(api.counters.trials).toBe(1);
  });

  it.each([
    ['at once', 0],
    ['after a moment, without a byte', 30],
  ])('counts a backend that accepts and resets %s as failing', async (_, delay) => {
    const resetter = await kit.resetting({ delay });
    const ok = await good();
    const api = await start(
      [resetter.address, ok.address],
      'consecutive_failures: 3\nbase_ejection_time: 30s',
    );
    let resets = 0;
    for (let i = 0; i < 40 && api.get(resetter.address)!.state === 'closed'; i++)
      if ((await askOpen()) !== 'good\nx') resets++;
    expect(api.get(resetter.address)).toMatchObject({ state: 'open', lastError: 'ECONNRESET' });
    // Reset at once may surface as a failed connect (then retried) or as a reset session.
    if (delay > 0) expect(resets).toBe(3);
    expect(resets).toBeLessThanOrEqual(3);
    const accepted = resetter.accepted;
    for (let i = 0; i < 10; i++) expect(await ask()).toBe('good\nx');
    expect(resetter.accepted).toBe(accepted);
  });

  it('counts connect timeouts against a backend whose accept queue is full', async () => {
    const hole = await kit.blackhole();
    const ok = await good();
    const api = await start(
      [hole.address, ok.address],
      'consecutive_failures: 2\nbase_ejection_time: 30s',
      'connect_timeout: 200ms',
    );
    for (let i = 0; i < 20 && api.get(hole.address)!.state === 'closed'; i++)
      expect(await ask()).toBe('good\nx');
    expect(api.get(hole.address)).toMatchObject({ state: 'open', lastError: 'ETIMEDOUT' });
    expect(backend(hole.address).connectFailures).toBe(2);
    for (let i = 0; i < 10; i++) expect(await ask()).toBe('good\nx');
    expect(backend(hole.address).connectFailures).toBe(2);
  });

  it('never ejects more than max_ejection_percent of the pool', async () => {
    const dead = (await Promise.all([kit.refusing(), kit.refusing(), kit.refusing()])).map((r) => r.address);
    const api = await start(
      dead,
      'consecutive_failures: 2\nbase_ejection_time: 30s\nmax_ejection_percent: 50',
    );
    const open = () => api.list().filter((b) => b.state !== 'closed').length;
    for (let i = 0; i < 15; i++) {
      expect(await ask()).not.toContain('x');
      expect(open()).toBeLessThanOrEqual(1);
    }
    expect(open()).toBe(1);
    expect(api.counters.capped).toBeGreaterThan(0);
    // The capped ones still take traffic (and keep failing).
    const capped = api.list().filter((b) => b.state === 'closed');
    expect(capped.every((b) => b.consecutiveFailures >= 2)).toBe(true);
  });

  it('with max_ejection_percent 100 the whole pool may open, and sessions fail fast', async () => {
    const dead = (await Promise.all([kit.refusing(), kit.refusing()])).map((r) => r.address);
    const api = await start(
      dead,
      'consecutive_failures: 2\nbase_ejection_time: 30s\nmax_ejection_percent: 100',
    );
    for (let i = 0; i < 10 && api.list().some((b) => b.state === 'closed'); i++) await ask();
    expect(api.list().map((b) => b.state)).toEqual(['open', 'open']);
    const failures = dead.map((d) => backend(d).connectFailures);
    await ask();
    expect(dead.map((d) => backend(d).connectFailures)).toEqual(failures);
    expect(proxy.service.counters.noBackend).toBeGreaterThan(0);
  });

  it('a passing health check closes an open breaker early', async () => {
    const dead = (await kit.refusing()).address;
    const ok = await good();
    const api = await start([dead, ok.address], 'consecutive_failures: 1\nbase_ejection_time: 30s');
    for (let i = 0; i < 5 && api.get(dead)!.state === 'closed'; i++) await ask();
    expect(api.get(dead)!.state).toBe('open');
    const b = backend(dead);
    proxy.service.setBackendStatus(b, 'health-check', 'down');
    proxy.service.setBackendStatus(b, 'some-other-plugin', 'up');
    expect(api.get(dead)!.state).toBe('open');
    proxy.service.setBackendStatus(b, 'health-check', 'up');
    expect(api.get(dead)!.state).toBe('closed');
    expect(b.status['circuit-breaker']).toBe('closed');
    // It takes traffic again: the next failure opens it again, for longer (multiplier kept).
    for (let i = 0; i < 5 && api.get(dead)!.state === 'closed'; i++) await ask();
    expect(api.get(dead)).toMatchObject({ state: 'open', ejections: 2 });
  });

  it('jitters the open time and lets the multiplier decay while closed', async () => {
    const dead = (await kit.refusing()).address;
    const ok = await good();
    const api = await start(
      [dead, ok.address],
      'consecutive_failures: 1\nbase_ejection_time: 30s\njitter: 10\ndecay_interval: 100ms',
    );
    const trip = async () => {
      for (let i = 0; i < 5 && api.get(dead)!.state === 'closed'; i++) await ask();
      return api.get(dead)!;
    };
    const first = await trip();
    expect(first).toMatchObject({ state: 'open', ejections: 1 });
    expect(first.openMs).toBeGreaterThanOrEqual(30_000);
    expect(first.openMs).toBeLessThanOrEqual(33_000);
    // Closed for more than two decay intervals: the multiplier is back to 0, so 1 after tripping.
    api.close(dead);
    await new Promise((r) => setTimeout(r, 250));
    expect(await trip()).toMatchObject({ state: 'open', ejections: 1, trips: 2 });
  });

  it('follows backends removed and added at run time', async () => {
    const dead = (await kit.refusing()).address;
    const ok = await good();
    const api = await start([dead, ok.address], 'consecutive_failures: 1\nbase_ejection_time: 30s');
    for (let i = 0; i < 5 && api.get(dead)!.state === 'closed'; i++) await ask();
    expect(api.get(dead)!.state).toBe('open');
    proxy.service.backends.remove(dead);
    expect(api.get(dead)).toBeUndefined();
    expect(api.list().map((b) => b.backend)).toEqual([ok.address]);
    const other = await good('other');
    proxy.service.backends.add({ address: other.address });
    proxy.service.backends.add({ address: dead });
    expect(api.get(dead)).toMatchObject({ state: 'closed', trips: 0, ejections: 0 });
    expect(api.list()).toHaveLength(3);
    expect(api.close(dead)).toBe(false);
    for (let i = 0; i < 5 && api.get(dead)!.state === 'closed'; i++) await ask();
    expect(api.close(dead)).toBe(true);
    expect(api.get(dead)!.state).toBe('closed');
  });

  it('opens on the failure ratio over the rolling window once min_requests is reached', async () => {
    let n = 0;
    const flaky = await kit.backend((s) => {
      if (n++ % 2 === 0) s.resetAndDestroy();
      else s.end('ok');
    });
    const api = await start(
      [flaky.address],
      'consecutive_failures: 0\nfailure_ratio: 0.5\nmin_requests: 10\nwindow: 1m\nmax_ejection_percent: 100',
      'retries: 0',
    );
    for (let i = 0; i < 9; i++) await ask();
    expect(api.get(flaky.address)!.state).toBe('closed');
    expect(api.get(flaky.address)!.window!.failures).toBeGreaterThanOrEqual(4);
    for (let i = 0; i < 4 && api.get(flaky.address)!.state === 'closed'; i++) await ask();
    expect(api.get(flaky.address)).toMatchObject({ state: 'open', lastReason: 'failure-ratio' });
    expect(api.get(flaky.address)!.consecutiveFailures).toBe(0);
  });

  it('rejects options that could never open the breaker', async () => {
    await expect(
      kit.proxy(`
listen: 127.0.0.1:0
plugins:
  circuit-breaker: { consecutive_failures: 0 }
`),
    ).rejects.toThrow(/could never open/);
    await expect(
      kit.proxy(`
listen: 127.0.0.1:0
plugins:
  circuit-breaker: { half_open_max: 0 }
`),
    ).rejects.toThrow(/half_open_max/);
  });
});
