import { once } from 'node:events';
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CertFactory, type CertFiles } from '../../test/fixtures/tls/certs.js';
import { tlsExchange } from '../../test/fixtures/tls/peers.js';
import {
  createTestKit,
  type TestBackend,
  type TestClient,
  type TestProxy,
  waitFor,
} from '../../testing/index.js';
import type { TlsListenerApi } from './index.js';

let certs: CertFactory;
let first: CertFiles;
let second: CertFiles;
let sniOld: CertFiles;
let sniNew: CertFiles;

beforeAll(async () => {
  certs = await CertFactory.create();
  [first, second, sniOld, sniNew] = await Promise.all([
    certs.leaf('first', { cn: 'first.test' }),
    certs.leaf('second', { cn: 'second.test' }),
    certs.leaf('sni-old', { cn: 'sni-old.test', san: ['DNS:sni.test'] }),
    certs.leaf('sni-new', { cn: 'sni-new.test', san: ['DNS:sni.test'] }),
  ]);
});
afterAll(() => certs.cleanup());

const q = JSON.stringify;
let run = 0;

describe('tls-listener certificate reload', () => {
  const kit = createTestKit();
  afterEach(kit.close);
  let backend: TestBackend;
  let proxy: TestProxy;
  let live: { dir: string; cert: string; key: string };

  beforeEach(async () => {
    backend = await kit.echo();
    const dir = join(certs.dir, `live-${++run}`);
    mkdirSync(dir);
    live = { dir, cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
    install(first);
  });

  const install = (files: CertFiles, target = live) => {
    copyFileSync(files.cert, target.cert);
    copyFileSync(files.key, target.key);
  };
  const start = async (extra = '') => {
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${backend.address}
plugins:
  tls-listener:
    cert: ${q(live.cert)}
    key: ${q(live.key)}
    watch_delay: 50ms
${extra.replace(/^/gm, '    ')}
`);
    return proxy.service.use<TlsListenerApi>('tls-listener')!;
  };
  const servedCN = async (servername?: string) =>
    (await tlsExchange(proxy.address, 'x', servername ? { servername } : {})).subjectCN;

  /** A TLS session through the proxy that keeps echoing. */
  const openSession = async () => {
    const [host, port] = proxy.address.split(':');
    const s = kit.adopt(tlsConnect({ host, port: Number(port), rejectUnauthorized: false }));
    await once(s.socket, 'secureConnect');
    await s.send('hello');
    expect((await s.read(5)).toString()).toBe('hello');
    return s;
  };
  const stillEchoes = async (s: TestClient<TLSSocket>, text: string) => {
    await s.send(text);
    expect((await s.read(text.length)).toString()).toBe(text);
  };

  it('reloads on file change: open sessions keep streaming, new connections get the new certificate', async () => {
    const api = await start();
    expect(await servedCN()).toBe('first.test');
    const session = await openSession();
    // Keep bytes flowing through the session while the files change under it.
    let sent = 0;
    const pump = setInterval(() => {
      session.socket.write('.');
      sent++;
    }, 5);
    install(second);
    await waitFor(() => api.stats.reloads === 1, 5000, 'reload');
    expect(await servedCN()).toBe('second.test');
    clearInterval(pump);
    await waitFor(() => session.buffered === sent, 5000, 'every byte echoed across the reload');
    expect(sent).toBeGreaterThan(0);
    expect((await session.read(sent)).toString()).toBe('.'.repeat(sent));
    await stillEchoes(session, 'still here');
    expect(api.certificates()[0]!.subject).toContain('second.test');
    expect(session.socket.getPeerCertificate().subject.CN).toBe('first.test');
  });

  it('keeps the current certificate when the new one is bad, and recovers once it is fixed', async () => {
    const api = await start();
    const session = await openSession();
    copyFileSync(second.cert, live.cert); // certificate without its key: a mismatch
    await waitFor(() => api.stats.reloadFailures >= 1, 5000, 'rejected reload');
    expect(await servedCN()).toBe('first.test');
    writeFileSync(live.cert, 'not a certificate');
    const failures = api.stats.reloadFailures;
    await waitFor(() => api.stats.reloadFailures > failures, 5000, 'rejected reload');
    expect(await servedCN()).toBe('first.test');
    expect(api.stats.reloads).toBe(0);
    await stillEchoes(session, 'unaffected');
    install(second);
    await waitFor(() => api.stats.reloads === 1, 5000, 'reload');
    expect(await servedCN()).toBe('second.test');
  });

  it('reloads on SIGHUP (file watching off) and removes its SIGHUP handler on stop', async () => {
    const before = process.listenerCount('SIGHUP');
    const api = await start('watch: false');
    expect(process.listenerCount('SIGHUP')).toBe(before + 1);
    install(second);
    await new Promise((r) => setTimeout(r, 150));
    expect(await servedCN()).toBe('first.test'); // not watching: nothing happened yet
    process.kill(process.pid, 'SIGHUP');
    await waitFor(() => api.stats.reloads === 1, 5000, 'reload on SIGHUP');
    expect(await servedCN()).toBe('second.test');
    // Same files again: nothing to do.
    expect(api.reload()).toBe(false);
    await proxy.stop();
    expect(process.listenerCount('SIGHUP')).toBe(before);
  });

  it('reloads SNI certificates replaced by rename (how certbot and editors write files)', async () => {
    const sni = { dir: live.dir, cert: join(live.dir, 'sni.crt'), key: join(live.dir, 'sni.key') };
    install(sniOld, sni);
    const api = await start(`sni:\n  sni.test: { cert: ${q(sni.cert)}, key: ${q(sni.key)} }`);
    expect(await servedCN('sni.test')).toBe('sni-old.test');
    copyFileSync(sniNew.key, `${sni.key}.tmp`);
    copyFileSync(sniNew.cert, `${sni.cert}.tmp`);
    renameSync(`${sni.key}.tmp`, sni.key);
    renameSync(`${sni.cert}.tmp`, sni.cert);
    await waitFor(() => api.stats.reloads === 1, 5000, 'reload');
    expect(await servedCN('sni.test')).toBe('sni-new.test');
    expect(await servedCN()).toBe('first.test');
  });
});
