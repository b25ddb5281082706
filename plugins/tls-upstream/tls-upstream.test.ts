import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { TlsOptions } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CertFactory, type CertFiles } from '../../test/fixtures/tls/certs.js';
import { startTlsServer, type TestTlsServer } from '../../test/fixtures/tls/peers.js';
import { createTestKit, exchange, type TestProxy, waitFor } from '../../testing/index.js';
import type { TlsUpstreamApi } from './index.js';

let certs: CertFactory;
let ca: CertFiles;
let named: CertFiles; // signed by ca, SAN DNS:backend.test only
let local: CertFiles; // signed by ca, SAN DNS:localhost + IP:127.0.0.1
let selfSigned: CertFiles; // SAN IP:127.0.0.1
let client: CertFiles; // signed by ca
let client2: CertFiles; // signed by ca

beforeAll(async () => {
  certs = await CertFactory.create();
  ca = await certs.ca('ca');
  [named, local, selfSigned, client, client2] = await Promise.all([
    certs.leaf('named', { cn: 'backend.test', ca }),
    certs.leaf('local', { cn: 'localhost', san: ['DNS:localhost', 'IP:127.0.0.1'], ca }),
    certs.leaf('self', { cn: 'self-signed', san: ['IP:127.0.0.1'] }),
    certs.leaf('client', { cn: 'proxy-client', ca }),
    certs.leaf('client2', { cn: 'proxy-client-2', ca }),
  ]);
});
afterAll(() => certs.cleanup());

const q = JSON.stringify;
const pem = (files: CertFiles): TlsOptions => ({
  cert: readFileSync(files.cert),
  key: readFileSync(files.key),
});

describe('tls-upstream', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let proxy: TestProxy;

  const tlsBackend = async (
    options: TlsOptions,
    onSecure?: Parameters<typeof startTlsServer>[1],
  ): Promise<TestTlsServer> => kit.track(await startTlsServer(options, onSecure));
  /** `backends` is YAML list items; `plugin` the tls-upstream options. */
  const start = async (backends: string, plugin = '', extra = '') => {
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
connect_timeout: 3s
${extra}
backends:
${backends.replace(/^/gm, '  ')}
plugins:
  tls-upstream:${plugin === '' ? ' {}' : `\n${plugin.replace(/^/gm, '    ')}`}
`);
    return proxy;
  };
  const api = () => proxy.service.use<TlsUpstreamApi>('tls-upstream')!;
  /** The session fails: the client gets no byte, only a close (a reset when its data went unread). */
  const expectRefused = async () => {
    const got = await exchange(proxy.address, 'hello').catch((err: NodeJS.ErrnoException) => err);
    if (got instanceof Error) expect(got.code).toBe('ECONNRESET');
    else expect(got.length).toBe(0);
  };

  it('refuses a self-signed backend by default: the client sees a close, the failure is counted', async () => {
    const backend = await tlsBackend(pem(selfSigned));
    await start(`- { address: ${backend.address}, tls: true }`, '', 'retries: 1');
    await expectRefused();
    const b = proxy.service.backends.get(backend.address)!;
    expect(b.connectFailures).toBe(2); // first attempt + one retry
    expect(proxy.service.counters.connectFailures).toBe(2);
    expect(backend.sessions.length).toBe(0);
  });

  it('accepts the self-signed backend with insecure_skip_verify', async () => {
    const backend = await tlsBackend(pem(selfSigned));
    await start(`- { address: ${backend.address}, tls: true, insecure_skip_verify: true }`);
    expect((await exchange(proxy.address, 'hello')).toString()).toBe('hello');
  });

  it('accepts the self-signed backend with its certificate as ca (per backend and plugin default)', async () => {
    const backend = await tlsBackend(pem(selfSigned));
    await start(`- { address: ${backend.address}, tls: true, ca: ${q(selfSigned.cert)} }`);
    expect((await exchange(proxy.address, 'per-backend')).toString()).toBe('per-backend');
    await proxy.stop();
    await start(`- { address: ${backend.address}, tls: true }`, `ca: ${q(selfSigned.cert)}`);
    expect((await exchange(proxy.address, 'default')).toString()).toBe('default');
  });

  it('sends servername as SNI and verifies the certificate against it', async () => {
    const backend = await tlsBackend(pem(named));
    await start(
      `- { address: ${backend.address}, tls: true, ca: ${q(ca.cert)}, servername: backend.test }`,
      '',
      'retries: 0',
    );
    expect((await exchange(proxy.address, 'sni')).toString()).toBe('sni');
    expect(backend.handshakes[0]!.servername).toBe('backend.test');
    await proxy.stop();

    // Without servername the IP address is verified, and this certificate does not cover it.
    await start(`- { address: ${backend.address}, tls: true, ca: ${q(ca.cert)} }`, '', 'retries: 0');
    await expectRefused();
    expect(proxy.service.backends.list()[0]!.connectFailures).toBe(1);
  });

  it('uses the host name as SNI by default', async () => {
    const backend = await tlsBackend(pem(local));
    await start(`- { address: "localhost:${backend.port}", tls: true, ca: ${q(ca.cert)} }`);
    expect((await exchange(proxy.address, 'name')).toString()).toBe('name');
    expect(backend.handshakes[0]!.servername).toBe('localhost');
  });

  it('presents a client certificate to a backend that requires one (mTLS)', async () => {
    const backend = await tlsBackend({
      ...pem(local),
      ca: readFileSync(ca.cert),
      requestCert: true,
      rejectUnauthorized: true,
    });
    await start(
      `- { address: ${backend.address}, tls: true, ca: ${q(ca.cert)}, cert: ${q(client.cert)}, key: ${q(client.key)} }`,
    );
    expect((await exchange(proxy.address, 'mtls')).toString()).toBe('mtls');
    expect(backend.handshakes[0]!.peerCN).toBe('proxy-client');
    await proxy.stop();

    await start(`- { address: ${backend.address}, tls: true, ca: ${q(ca.cert)} }`, '', 'retries: 0');
    await expectRefused();
    await waitFor(() => backend.handshakeErrors.length > 0, 5000, 'backend handshake error');
  });

  it('retries a backend with a bad certificate on a good one: no client notices', async () => {
    const bad = await tlsBackend(pem(selfSigned));
    const good = await tlsBackend(pem(local));
    await start(
      `- { address: ${bad.address}, tls: true, ca: ${q(ca.cert)} }\n- { address: ${good.address}, tls: true, ca: ${q(ca.cert)} }`,
    );
    for (let i = 0; i < 4; i++) expect((await exchange(proxy.address, `m${i}`)).toString()).toBe(`m${i}`);
    const registry = proxy.service.backends;
    expect(registry.get(bad.address)!.connectFailures).toBe(2); // round robin sent 2 of 4 there first
    expect(registry.get(good.address)!.total).toBe(4);
    expect(proxy.service.counters.retries).toBe(2);
  });

  it('handshake failures open the circuit breaker (listed after tls-upstream in the config)', async () => {
    const bad = await tlsBackend(pem(selfSigned));
    const good = await tlsBackend(pem(local));
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
retries: 1
backends:
  - { address: ${bad.address}, tls: true, ca: ${q(ca.cert)} }
  - { address: ${good.address}, tls: true, ca: ${q(ca.cert)} }
plugins:
  tls-upstream: {}
  circuit-breaker: { consecutive_failures: 2, base_ejection_time: 30s, max_ejection_percent: 50 }
`);
    for (let i = 0; i < 6; i++) expect((await exchange(proxy.address, `b${i}`)).toString()).toBe(`b${i}`);
    const badBackend = proxy.service.backends.get(bad.address)!;
    expect(badBackend.status['circuit-breaker']).toBe('open');
    expect(badBackend.connectFailures).toBe(2); // then ejected: no more attempts on it
  });

  it('carries 1 MB byte-exact both ways and keeps half-close over TLS', async () => {
    let backendSawEnd = false;
    const backend = await tlsBackend(pem(local), (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => {
        backendSawEnd = true;
        // Answer only after the proxy's FIN (close_notify + FIN) arrived.
        s.end(Buffer.concat(chunks));
      });
    });
    await start(`- { address: ${backend.address}, tls: true, ca: ${q(ca.cert)} }`);
    const payload = randomBytes(1024 * 1024);
    const got = await exchange(proxy.address, payload, 15_000);
    expect(backendSawEnd).toBe(true);
    expect(got.length).toBe(payload.length);
    expect(got.equals(payload)).toBe(true);
  });

  it('applies tls fields of backends added at run time (the admin API path)', async () => {
    const secure = await tlsBackend(pem(selfSigned));
    const plain = await kit.echo();
    await start(`- { address: ${plain.address} }`, '', 'retries: 0');
    const registry = proxy.service.backends;
    registry.remove(plain.address);

    registry.add({ address: secure.address, tls: true });
    await expectRefused(); // verification on by default
    registry.remove(secure.address);

    registry.add({ address: secure.address, tls: true, insecure_skip_verify: true });
    expect((await exchange(proxy.address, 'added')).toString()).toBe('added');
    registry.remove(secure.address);

    registry.add({ address: plain.address });
    expect((await exchange(proxy.address, 'plain')).toString()).toBe('plain');
    registry.remove(plain.address);

    // Unusable settings at run time: logged, and connects fail (never a plain-text fallback).
    registry.add({ address: secure.address, tls: true, ca: certs.path('nope.crt') });
    await expectRefused();
    expect(registry.get(secure.address)!.connectFailures).toBe(1);
    expect(secure.sessions.length).toBe(1);
  });

  it('builds one secure context per TLS settings, not per connection, and resumes sessions', async () => {
    const a = await tlsBackend(pem(local));
    const b = await tlsBackend(pem(local));
    await start(
      `- { address: ${a.address}, tls: true, ca: ${q(ca.cert)} }\n- { address: ${b.address}, tls: true, ca: ${q(ca.cert)} }`,
    );
    expect(api().stats.contextsBuilt).toBe(1); // same files: one shared context
    for (let i = 0; i < 6; i++) expect((await exchange(proxy.address, 'r')).toString()).toBe('r');
    expect(api().stats.contextsBuilt).toBe(1);
    // Each backend's later connections resume the session its first one got.
    expect(a.handshakes.map((h) => h.reused)).toEqual([false, true, true]);
    expect(b.handshakes.map((h) => h.reused)).toEqual([false, true, true]);
  });

  it('session_resumption: false does full handshakes', async () => {
    const a = await tlsBackend(pem(local));
    await start(`- { address: ${a.address}, tls: true, ca: ${q(ca.cert)} }`, 'session_resumption: false');
    for (let i = 0; i < 3; i++) await exchange(proxy.address, 'r');
    expect(a.handshakes.map((h) => h.reused)).toEqual([false, false, false]);
  });

  it('re-reads the client certificate on SIGHUP and removes its handler on stop', async () => {
    const live = { cert: certs.path('live-client.crt'), key: certs.path('live-client.key') };
    copyFileSync(client.cert, live.cert);
    copyFileSync(client.key, live.key);
    const backend = await tlsBackend({ ...pem(local), ca: readFileSync(ca.cert), requestCert: true });
    const before = process.listenerCount('SIGHUP');
    await start(
      `- { address: ${backend.address}, tls: true }`,
      `ca: ${q(ca.cert)}\ncert: ${q(live.cert)}\nkey: ${q(live.key)}`,
    );
    expect(process.listenerCount('SIGHUP')).toBe(before + 1);
    await exchange(proxy.address, 'one');
    copyFileSync(client2.cert, live.cert); // half-written: certificate without its key
    process.kill(process.pid, 'SIGHUP');
    await waitFor(() => api().stats.reloadFailures === 1, 5000, 'rejected reload');
    await exchange(proxy.address, 'two');
    copyFileSync(client2.key, live.key);
    process.kill(process.pid, 'SIGHUP');
    await waitFor(() => api().stats.reloads === 1, 5000, 'reload');
    await exchange(proxy.address, 'three');
    expect(backend.handshakes.map((h) => h.peerCN)).toEqual([
      'proxy-client',
      'proxy-client',
      'proxy-client-2',
    ]);
    await proxy.stop();
    expect(process.listenerCount('SIGHUP')).toBe(before);
  });

  it('leaves plain backends to the core (or the next connect tap)', async () => {
    const plain = await kit.echo();
    await start(`- { address: ${plain.address} }`);
    expect((await exchange(proxy.address, 'plain')).toString()).toBe('plain');
  });

  it('lets observers at stage -100 see every attempt, and answers before a pool at stage 0', async () => {
    const secure = await tlsBackend(pem(local));
    const plain = await kit.echo();
    await start(
      `- { address: ${secure.address}, tls: true, ca: ${q(ca.cert)} }\n- { address: ${plain.address} }`,
    );
    // Tapped after tls-upstream, like plugins listed later in the config.
    const observed: string[] = [];
    proxy.service.hooks.connect.tap({ name: 'fake-breaker', stage: -100 }, (_session, backend) => {
      observed.push(backend.address);
      return undefined;
    });
    const pooled: string[] = [];
    proxy.service.hooks.connect.tap('fake-pool', (_session, backend) => {
      pooled.push(backend.address);
      const socket = connect({ host: backend.host, port: backend.port, allowHalfOpen: true });
      return { socket, readyEvent: 'connect' };
    });
    for (let i = 0; i < 4; i++) expect((await exchange(proxy.address, 'p')).toString()).toBe('p');
    expect(observed).toEqual([secure.address, plain.address, secure.address, plain.address]);
    expect(pooled).toEqual([plain.address, plain.address]);
    expect(secure.handshakes.length).toBe(2);
  });

  it('closes a TLS backend connection when the client goes away', async () => {
    const backend = await tlsBackend(pem(local));
    await start(`- { address: ${backend.address}, tls: true, ca: ${q(ca.cert)} }`);
    const c = await kit.connect(proxy);
    await c.send('x');
    await c.read(1);
    c.destroy();
    await waitFor(() => proxy.service.sessions.size === 0, 5000, 'session release');
    await waitFor(() => backend.sessions[0]!.destroyed, 5000, 'backend side closed');
  });

  describe('start validation', () => {
    it('fails naming the backend and a missing ca file', async () => {
      const missing = certs.path('missing-ca.crt');
      await expect(start(`- { address: 127.0.0.1:9, tls: true, ca: ${q(missing)} }`)).rejects.toThrow(
        `backend 127.0.0.1:9: cannot read CA file ${missing}: ENOENT`,
      );
    });

    it('fails on a client key that does not match its certificate', async () => {
      await expect(
        start(`- { address: 127.0.0.1:9, tls: true, cert: ${q(client.cert)}, key: ${q(client2.key)} }`),
      ).rejects.toThrow(
        `client key file ${client2.key} does not match client certificate file ${client.cert}`,
      );
    });

    it('fails on cert without key', async () => {
      await expect(start(`- { address: 127.0.0.1:9, tls: true, cert: ${q(client.cert)} }`)).rejects.toThrow(
        /needs both cert and key/,
      );
    });
  });
});
