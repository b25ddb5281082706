// Facts an integration depends on, checked on this Node version rather than assumed:
// what a connection sent by the primary looks like in the worker, whether bytes the client sent
// before the hand-off arrive, TLS termination in the worker, and how the primary's net.Server
// behaves after it gave sockets away. Usage: node bench/dispatch/pitfalls.js (needs openssl).
import { execFileSync } from 'node:child_process';
import cluster from 'node:cluster';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));

if (cluster.isPrimary) {
  const dir = mkdtempSync(join(os.tmpdir(), 'dispatch-pitfalls-'));
  const worker = cluster.fork({ CERT_DIR: dir });
  const ask = (m, handle) => {
    const reply = new Promise((resolve) => worker.once('message', resolve));
    worker.send(m, handle);
    return reply;
  };
  const timeout = setTimeout(() => {
    console.error('pitfalls: timed out');
    worker.kill('SIGKILL');
    process.exit(1);
  }, 20_000);
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    await once(worker, 'online');
    const facts = {};

    // 1. A net.Socket from a pauseOnConnect server; the client writes before the hand-off.
    const server = net.createServer({ pauseOnConnect: true, noDelay: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect(server.address().port, '127.0.0.1');
    client.write('early bytes');
    const [socket] = await once(server, 'connection');
    await new Promise((r) => setTimeout(r, 50)); // the bytes are in the kernel buffer by now
    facts.primaryBeforeSend = { bytesRead: socket.bytesRead, connections: server._connections };
    const reply = ask({ t: 'inspect' }, socket);
    facts.primaryAfterSend = {
      hasHandle: socket._handle !== null,
      destroyed: socket.destroyed,
      connections: server._connections,
    };
    facts.workerSocket = await reply;
    const [echo] = await once(client, 'data');
    facts.clientGotEcho = String(echo);

    // 2. server.close() in the primary while the worker still serves a socket it sent.
    const closedAt = Date.now();
    let closeFired = false;
    server.close(() => {
      closeFired = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    facts.primaryServerCloseWhileWorkerHoldsSocket = closeFired
      ? 'close callback ran at once'
      : 'close callback waits for the worker to close the sockets it was sent (NODE_SOCKET_NOTIFY_CLOSE)';
    client.end();
    await once(client, 'close');
    await new Promise((r) => setTimeout(r, 200));
    facts.primaryServerClosedAfterClientLeft = closeFired ? `yes, after ${Date.now() - closedAt} ms` : 'no';

    // 3. TLS terminated in the worker on a socket sent by the primary.
    const tlsFront = net.createServer({ pauseOnConnect: true });
    tlsFront.listen(0, '127.0.0.1');
    await once(tlsFront, 'listening');
    tlsFront.on('connection', (s) => worker.send({ t: 'tls' }, s));
    const secure = tls.connect({
      port: tlsFront.address().port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
    });
    await once(secure, 'secureConnect');
    secure.write('over tls');
    const [tlsEcho] = await once(secure, 'data');
    facts.tlsInWorker = { protocol: secure.getProtocol(), echo: String(tlsEcho) };
    secure.destroy();
    tlsFront.close();

    console.log(JSON.stringify(facts, null, 2));
  } finally {
    clearTimeout(timeout);
    worker.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  const dir = process.env.CERT_DIR;
  let tlsServer = null;
  process.on('message', async (m, socket) => {
    if (m.t === 'inspect') {
      const facts = {
        isNetSocket: socket instanceof net.Socket,
        readableFlowing: socket.readableFlowing,
        isPaused: socket.isPaused(),
        allowHalfOpen: socket.allowHalfOpen,
        hasServer: socket.server != null,
        remote: `${socket.remoteAddress}:${socket.remotePort}`,
        local: `${socket.localAddress}:${socket.localPort}`,
      };
      // Did it start reading on its own? Wait a moment without consuming.
      await new Promise((r) => setTimeout(r, 50));
      facts.bufferedWithoutListener = socket.readableLength;
      socket.once('data', (chunk) => {
        facts.firstChunk = String(chunk);
        socket.write(chunk);
        process.send(facts);
      });
      socket.on('end', () => socket.end());
    } else if (m.t === 'tls') {
      // Documented injection point: a server that does not listen, fed with emit('connection').
      tlsServer ??= tls.createServer(
        { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
        (s) => s.on('data', (d) => s.write(d)),
      );
      tlsServer.emit('connection', socket);
    }
  });
}
