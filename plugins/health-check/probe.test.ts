import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, BackendSpec } from '../../plugin-sdk/index.js';
import { createTestKit, type TestBackend, waitFor } from '../../testing/index.js';
import { type CheckSettings, resolveSettings } from './options.js';
import { bytesMatcher, regexMatcher } from './payload.js';
import { MAX_REPLY, type ProbePlan, probe } from './probe.js';
import { type ProbeTarget, probeTarget } from './target.js';

const plain = (port: number): ProbeTarget => ({ host: '127.0.0.1', port, tls: null, error: null });
const plan = (p: Partial<ProbePlan> = {}): ProbePlan => ({ send: null, expect: null, timeout: 2000, ...p });

/** Runs one probe to completion. */
function check(target: ProbeTarget, p: ProbePlan): Promise<string | null> {
  return new Promise((resolve) => probe(target, p, resolve));
}

const kit = createTestKit();
afterEach(kit.close);

/** A test server whose sockets close when the peer's FIN arrives, so `sockets` shows the checker's. */
function serve(onConnection: (socket: Socket) => void): Promise<TestBackend> {
  return kit.backend((socket) => {
    socket.on('end', () => socket.destroy());
    onConnection(socket);
  });
}

/** A redis-like server: answers each `PING\r\n` with `reply`. */
function pingServer(reply: string, closeAfter = false): Promise<TestBackend> {
  return serve((socket) => {
    let got = '';
    socket.on('data', (c) => {
      got += c.toString();
      if (got.includes('PING\r\n')) {
        if (closeAfter) socket.end(reply);
        else socket.write(reply);
      }
    });
  });
}

describe('probe: TCP', () => {
  it('passes when the port accepts, and closes its connection', async () => {
    const s = await serve(() => {});
    expect(await check(plain(s.port), plan())).toBeNull();
    expect(s.accepted).toBe(1);
    await waitFor(() => s.sockets.size === 0, 3000, 'check connection closed');
  });

  it('fails with the connect error when nothing listens', async () => {
    const err = await check(plain((await kit.refusing()).port), plan());
    expect(err).toMatch(/^connect: .*ECONNREFUSED/);
  });

  it('fails when the target could not be prepared', async () => {
    expect(await check({ ...plain(1), error: 'tls config: ENOENT' }, plan())).toBe('tls config: ENOENT');
  });
});

describe('probe: send / expect', () => {
  const ping = Buffer.from('PING\r\n');

  it('passes on the expected reply', async () => {
    const s = await pingServer('+PONG\r\n');
    expect(
      await check(plain(s.port), plan({ send: ping, expect: bytesMatcher(Buffer.from('+PONG')) })),
    ).toBeNull();
  });

  it('passes when the reply arrives in pieces', async () => {
    const s = await serve((socket) => {
      socket.once('data', () => {
        socket.write('+PO');
        setTimeout(() => socket.write('NG\r\n'), 20);
      });
    });
    expect(
      await check(plain(s.port), plan({ send: ping, expect: bytesMatcher(Buffer.from('+PONG')) })),
    ).toBeNull();
  });

  it('fails on a wrong reply followed by close, quoting what came', async () => {
    const s = await pingServer('-ERR wrong\r\n', true);
    const err = await check(plain(s.port), plan({ send: ping, expect: bytesMatcher(Buffer.from('+PONG')) }));
    expect(err).toBe('closed before "+PONG" arrived; got "-ERR wrong\\r\\n"');
  });

  it('fails on a wrong reply on an open connection at the timeout, and closes the socket', async () => {
    const s = await pingServer('-ERR wrong\r\n');
    const err = await check(
      plain(s.port),
      plan({ send: ping, expect: bytesMatcher(Buffer.from('+PONG')), timeout: 150 }),
    );
    expect(err).toBe('timeout after 150ms during reply; got "-ERR wrong\\r\\n"');
    await waitFor(() => s.sockets.size === 0, 3000, 'timed-out check socket destroyed');
  });

  it('fails when the server closes without replying', async () => {
    const s = await serve((socket) => socket.once('data', () => socket.end()));
    const err = await check(plain(s.port), plan({ send: ping, expect: bytesMatcher(Buffer.from('+PONG')) }));
    expect(err).toBe('closed without a reply (expected "+PONG")');
  });

  it('matches a regex', async () => {
    const s = await pingServer('+PONG\r\n');
    const ok = await check(plain(s.port), plan({ send: ping, expect: regexMatcher('^\\+PONG\\r\\n') }));
    expect(ok).toBeNull();
    const bad = await check(
      plain(s.port),
      plan({ send: ping, expect: regexMatcher('^\\+PANG'), timeout: 150 }),
    );
    expect(bad).toMatch(/^timeout after 150ms during reply; got "\+PONG/);
  });

  it('expects a banner without sending anything (SMTP style)', async () => {
    const s = await serve((socket) => socket.write('220 mail.example ESMTP\r\n'));
    expect(await check(plain(s.port), plan({ expect: regexMatcher('^220 ') }))).toBeNull();
    const err = await check(plain(s.port), plan({ expect: regexMatcher('^554 '), timeout: 150 }));
    expect(err).toMatch(/^timeout/);
  });

  it('passes once a send-only payload is written, and the server gets it', async () => {
    let received = '';
    const s = await serve((socket) => socket.on('data', (c) => (received += c.toString())));
    expect(await check(plain(s.port), plan({ send: Buffer.from('hello\n') }))).toBeNull();
    await waitFor(() => received === 'hello\n', 3000, 'payload received');
  });

  it('gives up after 16 KiB of reply without a match', async () => {
    const s = await serve((socket) => socket.write(Buffer.alloc(MAX_REPLY + 100, 0x78)));
    const err = await check(plain(s.port), plan({ expect: bytesMatcher(Buffer.from('+PONG')) }));
    expect(err).toMatch(/^no match for "\+PONG" in the first \d+ bytes/);
  });

  it('abort ends a check silently and closes its socket', async () => {
    const s = await serve(() => {});
    let called = false;
    const abort = probe(plain(s.port), plan({ expect: bytesMatcher(Buffer.from('x')) }), () => {
      called = true;
    });
    await waitFor(() => s.sockets.size === 1, 3000, 'check connected');
    abort();
    await waitFor(() => s.sockets.size === 0, 3000, 'aborted check socket closed');
    await new Promise((r) => setTimeout(r, 50));
    expect(called).toBe(false);
  });
});

describe('probe: TLS handshake', () => {
  let dir: string;
  let tlsServer: TlsServer;
  let port: number;
  const tlsSockets = new Set<TLSSocket>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hc-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=backend.test',
        '-addext',
        'subjectAltName=DNS:backend.test,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    tlsServer = createTlsServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (socket) => {
        tlsSockets.add(socket);
        socket.on('close', () => tlsSockets.delete(socket));
        socket.on('data', (c) => {
          if (c.toString().includes('PING')) socket.write('+PONG\r\n');
        });
      },
    );
    tlsServer.on('tlsClientError', () => {});
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    port = (tlsServer.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const s of tlsSockets) s.destroy();
    await new Promise((r) => tlsServer.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const settings = (tls: CheckSettings['tls'] = 'auto'): CheckSettings =>
    resolveSettings({
      interval: 1000,
      jitter: 0,
      rise: 1,
      fall: 1,
      initial: 'up',
      tls,
      on_marked_down: 'keep',
      when_all_down: 'refuse',
    });
  const backend = (spec: Partial<BackendSpec>): Backend =>
    ({ host: '127.0.0.1', port, spec: { address: `127.0.0.1:${port}`, ...spec } }) as unknown as Backend;
  const targetOf = (spec: Partial<BackendSpec>, tls?: CheckSettings['tls']) =>
    probeTarget(backend(spec), settings(tls), dir);

  it('passes with the backend spec ca (a path relative to the config folder)', async () => {
    const target = targetOf({ tls: true, ca: 'cert.pem' });
    expect(target.tls).not.toBeNull();
    expect(target.tls!.servername).toBeUndefined(); // never SNI with an IP address
    expect(await check(target, plan())).toBeNull();
  });

  it('passes with servername and inline PEM ca', async () => {
    const ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
    expect(await check(targetOf({ tls: true, ca, servername: 'backend.test' }), plan())).toBeNull();
  });

  it('fails on an untrusted certificate unless insecure_skip_verify', async () => {
    const err = await check(targetOf({ tls: true }), plan());
    expect(err).toMatch(/^tls handshake: .*self[- ]signed/i);
    expect(await check(targetOf({ tls: true, insecure_skip_verify: true }), plan())).toBeNull();
  });

  it('fails on a name mismatch', async () => {
    const err = await check(targetOf({ tls: true, ca: 'cert.pem', servername: 'other.test' }), plan());
    expect(err).toMatch(/^tls handshake: .*other\.test/);
  });

  it('fails when the ca file is missing, without throwing', async () => {
    const target = targetOf({ tls: true, ca: 'missing.pem' });
    expect(target.error).toMatch(/^tls config: ENOENT/);
    expect(await check(target, plan())).toMatch(/^tls config: ENOENT/);
  });

  it('fails against a plain TCP server', async () => {
    const s = await serve((socket) => socket.end('hello, not TLS\n'));
    const target = { ...targetOf({ tls: true, ca: 'cert.pem' }), port: s.port };
    expect(await check(target, plan({ timeout: 1000 }))).toMatch(/^(tls handshake|connection closed)/);
  });

  it('runs send/expect over TLS', async () => {
    const target = targetOf({ tls: true, ca: 'cert.pem' });
    const p = plan({ send: Buffer.from('PING\r\n'), expect: bytesMatcher(Buffer.from('+PONG')) });
    expect(await check(target, p)).toBeNull();
  });

  it('tls: off checks plain TCP even for a TLS backend; tls: on forces TLS', async () => {
    expect(targetOf({ tls: true }, 'off').tls).toBeNull();
    expect(targetOf({}, 'on').tls).not.toBeNull();
    expect(targetOf({}).tls).toBeNull();
  });
});
