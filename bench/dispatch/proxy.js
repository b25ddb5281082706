// One proxy variant. Usage: node proxy.js <mode> <target-port> [--workers N] [--fd-threshold N]
//   single   one process, net.createServer, no cluster
//   rr       node:cluster SCHED_RR, workers listen on a shared port
//   none     node:cluster SCHED_NONE
//   socket   custom dispatch: the primary accepts and sends net.Sockets (documented API)
//   native   custom dispatch: the primary sends raw TCP handles (internals)
// Listens on 127.0.0.1, port 0. Prints "ready <port>" once every worker is ready, and a line
// "stats <json>" on SIGUSR2 (custom dispatch: accepted, refused, failed, per-worker counts).
// --guard enables the descriptor guard at 90 % of the soft limit; --fd-threshold N at N.
// --advanced uses the 'advanced' (V8) serialization on the IPC channels instead of JSON.
import cluster from 'node:cluster';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Dispatcher } from './dispatcher.js';
import { FdGuard } from './fd-guard.js';
import { pipeToUpstream } from './pipe.js';
import { receiveConnections } from './receiver.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    workers: { type: 'string', default: '2' },
    guard: { type: 'boolean', default: false },
    'fd-threshold': { type: 'string' },
    advanced: { type: 'boolean', default: false },
  },
});
const [mode, targetArg] = positionals;
const target = Number(targetArg);
const MODES = ['single', 'rr', 'none', 'socket', 'native'];
if (!MODES.includes(mode) || !(target > 0)) {
  console.error(
    `usage: node proxy.js <${MODES.join('|')}> <target-port> [--workers N] [--guard] [--fd-threshold N] [--advanced]`,
  );
  process.exit(2);
}
const custom = mode === 'socket' || mode === 'native';

function listenPiped() {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (client) =>
    pipeToUpstream(client, target),
  );
  server.on('error', () => {}); // accept errors (EMFILE) must not kill the bench
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

if (mode === 'single') {
  const port = await listenPiped();
  process.on('SIGUSR2', () => console.log(`stats ${JSON.stringify({})}`));
  process.on('SIGTERM', () => process.exit(0));
  console.log(`ready ${port}`);
} else if (cluster.isPrimary) {
  cluster.schedulingPolicy = mode === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  // The IPC channel's serializer: JSON lines (default) or V8's structured clone.
  cluster.setupPrimary({ serialization: values.advanced ? 'advanced' : 'json' });
  const count = Number(values.workers);
  const threshold = values['fd-threshold'] === undefined ? undefined : Number(values['fd-threshold']);
  const guard = custom && (values.guard || threshold !== undefined) ? new FdGuard({ threshold }) : null;
  const dispatcher = custom ? new Dispatcher({ mode, guard }) : null;
  let stopping = false;
  const ready = [];
  for (let i = 0; i < count; i++) {
    const worker = cluster.fork({ DISPATCH_MODE: mode });
    ready.push(
      new Promise((resolve) =>
        worker.on('message', (m) => {
          if (m?.t === 'ready') resolve(m.port);
        }),
      ),
    );
    worker.on('exit', () => {
      if (!stopping) {
        console.error(`worker ${worker.process.pid} exited`);
        process.exit(1);
      }
    });
    dispatcher?.add(worker);
  }
  const ports = await Promise.all(ready);
  const port = custom ? await dispatcher.listen(0, '127.0.0.1') : ports[0];
  process.on('SIGUSR2', () => {
    const stats = dispatcher === null ? {} : dispatcher.stats();
    if (guard !== null) Object.assign(stats, { threshold: guard.threshold, guardPeakFds: guard.peak });
    console.log(`stats ${JSON.stringify(stats)}`);
  });
  process.on('SIGTERM', () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
    process.exit(0);
  });
  console.log(`ready ${port}`);
} else if (custom) {
  receiveConnections(target);
  process.send({ t: 'ready', port: 0 });
} else {
  const port = await listenPiped(); // cluster: every worker gets the same shared port
  process.send({ t: 'ready', port });
}
