// The baseline: the smallest correct Node TCP proxy. Usage: node naive-proxy.js <target-port> [listen-port]
// Prints "listening <port>" once bound (listen port 0, the default, lets the OS pick).
import net from 'node:net';

const [target, listen = '0'] = process.argv.slice(2).map(Number);
const server = net.createServer({ allowHalfOpen: true }, (client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: target, allowHalfOpen: true });
  client.pipe(upstream).on('error', () => client.destroy());
  upstream.pipe(client).on('error', () => upstream.destroy());
});
server.listen(listen, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
