// A backend for the concurrency benchmark: echoes every byte back. Run by run.js over IPC:
// it replies { type: 'ready', port } once bound and { type: 'count', connections } on request.
import net from 'node:net';

const send = /** @type {NonNullable<typeof process.send>} */ (process.send?.bind(process));
let connections = 0;
const server = net.createServer((socket) => {
  connections++;
  socket.on('data', echo);
  socket.on('error', ignore);
  socket.on('close', () => connections--);
});
server.on('error', (err) => {
  process.stderr.write(`echo backend: ${err.message}\n`);
  process.exit(1);
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  send({ type: 'ready', port: /** @type {net.AddressInfo} */ (server.address()).port });
});
process.on('message', (/** @type {any} */ msg) => {
  if (msg?.type === 'count') send({ type: 'count', id: msg.id, connections });
});
// The parent is gone: nothing left to serve.
process.on('disconnect', () => process.exit(0));

/**
 * One function for every socket (no closure per connection).
 * @this {net.Socket}
 * @param {Buffer} chunk
 */
function echo(chunk) {
  this.write(chunk);
}

function ignore() {}
