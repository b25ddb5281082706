import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CertFactory, type CertFiles } from '../../test/fixtures/tls/certs.js';
import { sClient, tlsExchange } from '../../test/fixtures/tls/peers.js';
import { createTestKit, exchange, type TestBackend, type TestProxy, waitFor } from '../../testing/index.js';
import type { TlsListenerApi } from './index.js';

let certs: CertFactory;
let ca: CertFiles;
let server: CertFiles; // CN=default.test, SAN also 127.0.0.1
let sniExact: CertFiles;
let sniWild: CertFiles;
let client: CertFiles; // signed by ca
let stranger: CertFiles; // self-signed client certificate

beforeAll(async () => {
  certs = await CertFactory.create();
  ca = await certs.ca('ca');
  [server, sniExact, sniWild, client, stranger] = await Promise.all([
    certs.leaf('server', { cn: 'default.test', san: ['DNS:default.test', 'IP:127.0.0.1'], ca }),
    certs.leaf('exact', { cn: 'exact.test', ca }),
    certs.leaf('wild', { cn: 'wild', san: ['DNS:*.wild.test'], ca }),
    certs.leaf('client', { cn: 'client-1', ca }),
    certs.leaf('stranger', { cn: 'stranger' }),
  ]);
});
afterAll(() => certs.cleanup());

const q = JSON.stringify;

describe('tls-listener', () => {
  const kit = createTestKit();
  let backend: TestBackend | undefined;
  let proxy: TestProxy;
  afterEach(async () => {
    await kit.close();
    backend = undefined;
  });

  async function start(pluginYaml: string, listen = '127.0.0.1:0'): Promise<TestProxy> {
    backend ??= await kit.echo();
    proxy = await kit.proxy(`
listen: ${listen}
backends:
  - address: ${backend.address}
plugins:
  tls-listener:
${pluginYaml.replace(/^/gm, '    ')}
`);
    return proxy;
  }
  const basic = () => `cert: ${q(server.cert)}\nkey: ${q(server.key)}\nwatch: false`;
  const api = () => proxy.service.use<TlsListenerApi>('tls-listener')!;

  it('terminates TLS: openssl s_client sees the certificate and the backend answer', async () => {
    // A backend that answers one line and closes, so s_client exits on its own.
    backend = await kit.backend((s) => {
      s.once('data', (d) => s.end(`echo:${d}`));
    });
    await start(basic());
    const r = await sClient(proxy.address, ['-servername', 'default.test', '-CAfile', ca.cert], 'hello\n');
    expect(r.stdout).toMatch(/subject=CN\s*=\s*default\.test/);
    expect(r.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(r.stdout).toContain('echo:hello');
    expect(api().stats.handshakes).toBe(1);
  });

  it('carries 1 MB byte-exact both ways through a Node TLS client, verified against the CA', async () => {
    await start(basic());
    const payload = randomBytes(1024 * 1024);
    const r = await tlsExchange(proxy.address, payload, {
      ca: readFileSync(ca.cert),
      rejectUnauthorized: true,
      servername: 'default.test',
    });
    expect(r.data.equals(payload)).toBe(true);
    expect(r.protocol).toBe('TLSv1.3');
    const s = proxy.service;
    await waitFor(() => s.sessions.size === 0, 5000, 'session release');
  });

  it('negotiates ALPN from the alpn list', async () => {
    await start(`${basic()}\nalpn: [h2, http/1.1]`);
    const [host, port] = proxy.address.split(':');
    const s = tlsConnect({
      host,
      port: Number(port),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1', 'h2'],
    });
    await once(s, 'secureConnect');
    expect(s.alpnProtocol).toBe('h2'); // the server's preference wins
    s.destroy();
  });

  it('keeps half-close over TLS: the client FIN reaches the backend, its late answer comes back', async () => {
    let backendSawEnd = false;
    backend = await kit.backend((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c) => chunks.push(c));
      s.on('end', () => {
        backendSawEnd = true;
        // Answer only after the client's FIN.
        setTimeout(() => s.end(`late:${Buffer.concat(chunks)}`), 20);
      });
    });
    await start(basic());
    const r = await tlsExchange(proxy.address, 'ping');
    expect(backendSawEnd).toBe(true);
    expect(r.data.toString()).toBe('late:ping');
  });

  it('picks the certificate by SNI: exact name, wildcard, unknown name and no SNI', async () => {
    await start(`${basic()}
sni:
  exact.test: { cert: ${q(sniExact.cert)}, key: ${q(sniExact.key)} }
  "*.wild.test": { cert: ${q(sniWild.cert)}, key: ${q(sniWild.key)} }`);
    const cn = async (servername?: string) =>
      (await tlsExchange(proxy.address, 'x', servername ? { servername } : {})).subjectCN;
    expect(await cn('exact.test')).toBe('exact.test');
    expect(await cn('EXACT.test')).toBe('exact.test');
    expect(await cn('a.wild.test')).toBe('wild');
    expect(await cn('a.b.wild.test')).toBe('default.test'); // the wildcard covers one label only
    expect(await cn('wild.test')).toBe('default.test');
    expect(await cn('other.test')).toBe('default.test');
    expect(await cn()).toBe('default.test'); // an IP address: Node sends no SNI

    const r = await sClient(proxy.address, ['-servername', 'x.wild.test', '-CAfile', ca.cert], '');
    expect(r.stdout).toMatch(/subject=CN\s*=\s*wild/);
    expect(r.stdout).toMatch(/Verify return code: 0 \(ok\)/);
  });

  it('refuses clients below min_version (default TLSv1.2) and counts the failed handshakes', async () => {
    await start(basic());
    await expect(
      tlsExchange(proxy.address, 'x', { maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    ).rejects.toThrow();
    const tls12 = await tlsExchange(proxy.address, 'x', { maxVersion: 'TLSv1.2' });
    expect(tls12.protocol).toBe('TLSv1.2');
    expect(tls12.data.toString()).toBe('x');
    await waitFor(() => api().stats.handshakeErrors === 1, 5000, 'handshake error count');
    expect(backend!.accepted).toBe(1);
  });

  it('min_version TLSv1.3 refuses a TLS 1.2 client (openssl and Node)', async () => {
    await start(`${basic()}\nmin_version: TLSv1.3`);
    const r = await sClient(proxy.address, ['-tls1_2'], 'x\n');
    expect(r.stdout).not.toContain('x\n');
    expect(r.code).not.toBe(0);
    await expect(tlsExchange(proxy.address, 'x', { maxVersion: 'TLSv1.2' })).rejects.toThrow();
    await waitFor(() => api().stats.handshakeErrors === 2, 5000, 'handshake error count');
    expect(backend!.accepted).toBe(0);
  });

  describe('client certificates', () => {
    const mtls = (mode: string) => `${basic()}\nclient_ca: ${q(ca.cert)}\nclient_auth: ${mode}`;
    const withCert = (files: CertFiles) => ({ cert: readFileSync(files.cert), key: readFileSync(files.key) });

    it('require: no certificate or an unknown one fails; a certificate from client_ca passes', async () => {
      await start(mtls('require'));
      // TLS 1.3: the client may finish its side first; the server's alert then ends the session.
      const none = await tlsExchange(proxy.address, 'x').catch((err: Error) => err);
      if (!(none instanceof Error)) expect(none.data.length).toBe(0);
      const bad = await tlsExchange(proxy.address, 'x', withCert(stranger)).catch((err: Error) => err);
      if (!(bad instanceof Error)) expect(bad.data.length).toBe(0);
      const good = await tlsExchange(proxy.address, 'ok', withCert(client));
      expect(good.data.toString()).toBe('ok');
      expect(backend!.accepted).toBe(1);
      await waitFor(() => api().stats.handshakeErrors === 2, 5000, 'handshake error count');
    });

    it('require: openssl s_client with and without a client certificate', async () => {
      backend = await kit.backend((s) => {
        s.once('data', (d) => s.end(`echo:${d}`));
      });
      await start(mtls('require'));
      const without = await sClient(proxy.address, [], 'x\n');
      expect(without.stdout + without.stderr).toMatch(/certificate required|alert/i);
      const withCert = await sClient(proxy.address, ['-cert', client.cert, '-key', client.key], 'x\n');
      expect(withCert.stdout).toContain('echo:x');
      expect(backend.accepted).toBe(1);
    });

    it('request: no certificate passes, a bad one is closed, a good one passes', async () => {
      await start(mtls('request'));
      expect((await tlsExchange(proxy.address, 'anon')).data.toString()).toBe('anon');
      const bad = await tlsExchange(proxy.address, 'x', withCert(stranger));
      expect(bad.data.length).toBe(0);
      expect((await tlsExchange(proxy.address, 'known', withCert(client))).data.toString()).toBe('known');
      expect(api().stats.clientCertRejected).toBe(1);
      expect(backend!.accepted).toBe(2);
    });

    it('client_auth without client_ca is a start error', async () => {
      await expect(start(`${basic()}\nclient_auth: require`)).rejects.toThrow(/needs client_ca/);
    });
  });

  it('runs a plain and a TLS listener side by side (listeners by position and by address)', async () => {
    await start(`${basic()}\nlisteners: [1]`, '[127.0.0.1:0, 127.0.0.1:0]');
    const [plain, secure] = proxy.service.addresses();
    expect((await exchange(plain!, 'plain')).toString()).toBe('plain');
    expect((await tlsExchange(secure!, 'secure')).data.toString()).toBe('secure');
    await proxy.stop();

    await start(`${basic()}\nlisteners: ["localhost:0"]`, '[127.0.0.1:0, "localhost:0"]');
    const [plain2, secure2] = proxy.service.addresses();
    expect((await exchange(plain2!, 'plain')).toString()).toBe('plain');
    expect((await tlsExchange(secure2!, 'secure')).data.toString()).toBe('secure');
  });

  it('an unknown listener address is a start error', async () => {
    await expect(start(`${basic()}\nlisteners: ["127.0.0.1:1"]`)).rejects.toThrow(
      /"127\.0\.0\.1:1" is not one of this service's listeners/,
    );
  });

  it('survives garbage and silent clients: handshake errors are counted, handshake_timeout closes', async () => {
    await start(`${basic()}\nhandshake_timeout: 150ms`);
    const [host, port] = [proxy.address.split(':')[0]!, Number(proxy.address.split(':')[1])];
    const garbage = netConnect({ host, port });
    garbage.on('error', () => {});
    garbage.write('GET / HTTP/1.1\r\n\r\n');
    await once(garbage, 'close');
    const silent = netConnect({ host, port });
    silent.on('error', () => {});
    await once(silent, 'close'); // closed by the handshake timeout
    // A client that goes away in the middle of a handshake.
    const quitter = tlsConnect({ host, port, rejectUnauthorized: false });
    quitter.on('error', () => {});
    quitter.once('connect', () => quitter.destroy());
    await once(quitter, 'close');
    await waitFor(() => api().stats.handshakeErrors >= 2, 5000, 'handshake error count');
    expect((await tlsExchange(proxy.address, 'still fine')).data.toString()).toBe('still fine');
    expect(backend!.accepted).toBe(1);
  });

  it('stops with a TLS session open and a handshake in progress', async () => {
    await start(basic());
    const [host, port] = [proxy.address.split(':')[0]!, Number(proxy.address.split(':')[1])];
    const open = tlsConnect({ host, port, rejectUnauthorized: false });
    open.on('error', () => {});
    await once(open, 'secureConnect');
    open.write('a');
    await once(open, 'data');
    const pending = netConnect({ host, port });
    pending.on('error', () => {});
    await once(pending, 'connect');
    const closed = Promise.all([once(open, 'close'), once(pending, 'close')]);
    await proxy.stop(0);
    pending.destroy();
    await closed;
  });

  describe('start validation', () => {
    it('fails naming a missing certificate file, as a config error at its key', async () => {
      const missing = certs.path('missing.crt');
      await expect(start(`cert: ${q(missing)}\nkey: ${q(server.key)}`)).rejects.toThrow(
        new RegExp(`plugins\\.tls-listener\\.cert {2}certificate file ${missing} cannot be read: ENOENT`),
      );
    });

    it('fails naming a key that does not match the certificate', async () => {
      await expect(start(`cert: ${q(server.cert)}\nkey: ${q(client.key)}`)).rejects.toThrow(
        `key file ${client.key} does not match certificate file ${server.cert}`,
      );
    });

    it('fails naming a file that is not a certificate', async () => {
      await expect(start(`cert: ${q(server.key)}\nkey: ${q(server.key)}`)).rejects.toThrow(
        `certificate file ${server.key} holds no PEM certificate`,
      );
    });

    it('fails naming a bad SNI certificate', async () => {
      await expect(
        start(`${basic()}\nsni:\n  a.test: { cert: ${q(sniExact.cert)}, key: ${q(server.key)} }`),
      ).rejects.toThrow(`key file ${server.key} does not match certificate file ${sniExact.cert}`);
    });

    it('rejects a malformed SNI pattern in the config', async () => {
      await expect(
        start(`${basic()}\nsni:\n  "a.*.test": { cert: ${q(sniExact.cert)}, key: ${q(sniExact.key)} }`),
      ).rejects.toThrow(/sni/);
    });
  });
});
