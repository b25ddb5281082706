// Child: backends of unequal speed for the spread workload. Backend i serves at most
// `workers` requests at a time and takes `times[i]` ms per request (a worker pool, like an
// application server); requests beyond that wait in its queue. Each reply is the backend's
// name and a newline, sent once the client's first bytes arrived and a worker is free.
// Sends { type: 'ready', ports } over IPC; exits when the parent goes.
import net from 'node:net';

const times = (process.argv[2] ?? '4,8,16,32,64').split(',').map(Number);
const workers = Number(process.argv[3] ?? 2);

/**
 * @param {string} name
 * @param {number} ms
 * @returns {Promise<number>} its port
 */
function backend(name, ms) {
  let busy = 0;
  /** @type {net.Socket[]} */
  const queue = [];
  /** @param {net.Socket} socket */
  const serve = (socket) => {
    busy++;
    setTimeout(() => {
      busy--;
      if (!socket.destroyed) socket.end(`${name}\n`);
      const next = queue.shift();
      if (next !== undefined) serve(next);
    }, ms);
  };
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      if (busy < workers) serve(socket);
      else queue.push(socket);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(/** @type {net.AddressInfo} */ (server.address()).port)),
  );
}

const ports = await Promise.all(times.map((ms, i) => backend(`b${i}`, ms)));
process.send?.({ type: 'ready', ports });
process.on('disconnect', () => process.exit(0));
