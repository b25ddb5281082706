// The baseline: the smallest correct Node TCP proxy. Usage: node naive-proxy.js <target-port> [listen-port]
// Prints "listening <port>" once bound (listen port 0, the default, lets the OS pick).
// NAIVE_NODELAY=1 sets TCP_NODELAY on both sockets, as Switchyard does (the `naive-nodelay` target).
import net from 'node:net';

const [target, listen = 0] = process.argv.slice(2).map(Number);
const noDelay = process.env.NAIVE_NODELAY === '1';
const server = net.createServer({ allowHalfOpen: true, noDelay }, (client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: target, allowHalfOpen: true, noDelay });
  client.pipe(upstream).on('error', () => client.destroy());
  upstream.pipe(client).on('error', () => upstream.destroy());
});
server.listen(listen, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0)); // so `node --cpu-prof` writes its profile (bench/profile.js)
