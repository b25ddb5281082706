// The baseline: the smallest correct Node TCP proxy (round robin over the backend ports, one
// listener per address). Usage: node naive-proxy.js '{"listen":["127.0.0.1"],"backends":[port]}'
import net from 'node:net';
import v8 from 'node:v8';

const { listen, backends } = JSON.parse(process.argv[2]);
let next = 0;
const onConnection = (client) => {
  const port = backends[next++ % backends.length];
  const upstream = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  client.pipe(upstream).on('error', () => client.destroy());
  upstream.pipe(client).on('error', () => upstream.destroy());
};
const servers = listen.map((host) => net.createServer({ allowHalfOpen: true }, onConnection).listen(0, host));

// The benchmark's probe over IPC, not part of the proxy: bound addresses, client connections, memory.
process.on('message', (msg) => {
  if (msg?.type !== 'probe') return;
  if (msg.gc && globalThis.gc) globalThis.gc();
  let memory = null;
  try {
    memory = process.memoryUsage(); // throws EMFILE at the fd limit
  } catch {}
  const addresses = servers.map((s) => (s.address() ? `${s.address().address}:${s.address().port}` : null));
  const active = servers.reduce((sum, s) => sum + s._connections, 0);
  if (typeof msg.heapSnapshot === 'string') v8.writeHeapSnapshot(msg.heapSnapshot);
  const heapSpaces = Object.fromEntries(
    v8
      .getHeapSpaceStatistics()
      .filter((s) => s.space_size > 0)
      .map((s) => [
        s.space_name,
        { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size },
      ]),
  );
  process.send({ type: 'probe', id: msg.id, addresses, active, memory, heapSpaces });
});
process.on('disconnect', () => process.exit(0));
