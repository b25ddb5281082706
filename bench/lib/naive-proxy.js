// The baseline: the smallest correct Node TCP proxy, what anyone would write first.
//   node naive-proxy.js '{"listen":["127.0.0.1"],"backends":[6379],"noDelay":false}'
// One listener per address on an OS-assigned port, round robin over the backend ports on
// 127.0.0.1, `allowHalfOpen` both ways; `noDelay` sets TCP_NODELAY on both sockets, as
// Switchyard does (the `naive-nodelay` target). Prints "listening <host>:<port>" per listener
// once bound. With an IPC channel it also answers the concurrency benchmark's probe.
import net from 'node:net';
import v8 from 'node:v8';
import { fullGc, heapSpaces, memoryUsage } from './v8-stats.js';

/** `port` and `reusePort` only for naive-reuseport.js, which runs several copies on one port. */
/** @type {{ listen: string[], backends: number[], noDelay?: boolean, port?: number, reusePort?: boolean }} */
const {
  listen,
  backends,
  noDelay = false,
  port: listenPort = 0,
  reusePort = false,
} = JSON.parse(process.argv[2] ?? '');
let next = 0;
/** @param {net.Socket} client */
const onConnection = (client) => {
  const port = backends[next++ % backends.length];
  const upstream = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay });
  client.pipe(upstream).on('error', () => client.destroy());
  upstream.pipe(client).on('error', () => upstream.destroy());
};
const servers = listen.map((host) => {
  const server = net.createServer({ allowHalfOpen: true, noDelay }, onConnection);
  const options = reusePort ? { port: listenPort, host, reusePort } : { port: listenPort, host };
  return server.listen(options, () => console.log(`listening ${addressOf(server)}`));
});
// So that `node --cpu-prof` writes its profile (bench/profile.js).
process.on('SIGTERM', () => process.exit(0));

/** @param {net.Server} server */
function addressOf(server) {
  const a = /** @type {net.AddressInfo | null} */ (server.address());
  return a === null ? null : `${a.address}:${a.port}`;
}

// The concurrency benchmark's probe, not part of the proxy: bound addresses, client
// connections, memory (after a full GC with --expose-gc), a heap snapshot on request.
if (process.send) {
  const send = process.send.bind(process);
  process.on('message', (/** @type {any} */ msg) => {
    if (msg?.type !== 'probe') return;
    if (msg.gc) fullGc();
    const memory = memoryUsage();
    // @ts-expect-error: _connections is the server's own count of open connections
    const active = servers.reduce((sum, s) => sum + s._connections, 0);
    if (typeof msg.heapSnapshot === 'string') v8.writeHeapSnapshot(msg.heapSnapshot);
    send({
      type: 'probe',
      id: msg.id,
      addresses: servers.map(addressOf),
      active,
      memory,
      heapSpaces: heapSpaces(),
    });
  });
  process.on('disconnect', () => process.exit(0));
}
