// Child: backends of unequal speed for the spread workload. Backend i serves at most
// `workers` requests at a time and takes `times[i]` ms per request (a worker pool, like an
// application server); requests beyond that wait in its queue. Each reply is the backend's
// name and a newline, sent once the client's first bytes arrived and a worker is free.
// Prints {"ports": [...]} when listening; exits on SIGTERM or when stdin closes.
import net from 'node:net';

const times = (process.argv[2] ?? '1,2,4,8,16').split(',').map(Number);
const workers = Number(process.argv[3] ?? 2);

function backend(name, ms) {
  let busy = 0;
  /** @type {net.Socket[]} */
  const queue = [];
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
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const servers = await Promise.all(times.map((ms, i) => backend(`b${i}`, ms)));
process.stdout.write(`${JSON.stringify({ ports: servers.map((s) => s.address().port) })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
