// Opens `total` connections, `concurrency` at a time, each sending one inline PING and waiting
// for +PONG. Prints JSON counts of how each ended, so refused and silently dropped connections
// show up (redis-benchmark aborts on the first one).
// Usage: node burst-client.js <port> <total> <concurrency> [timeout-ms]
import net from 'node:net';

const [port, total, concurrency, timeoutMs = 5000] = process.argv.slice(2).map(Number);
const counts = { ok: 0, reset: 0, closedWithoutReply: 0, timeout: 0, connectError: 0 };
let started = 0;
let finished = 0;

function one() {
  started++;
  const socket = net.connect(port, '127.0.0.1');
  let connected = false;
  let reply = '';
  let outcome = null;
  const end = (what) => {
    if (outcome !== null) return;
    outcome = what;
    counts[what]++;
    socket.destroy();
    finished++;
    if (started < total) one();
    else if (finished === total) {
      console.log(JSON.stringify(counts));
      process.exit(0);
    }
  };
  socket.setTimeout(timeoutMs, () => end('timeout'));
  socket.on('connect', () => {
    connected = true;
    socket.write('PING\r\n');
  });
  socket.on('data', (chunk) => {
    reply += chunk;
    if (reply.includes('+PONG')) end('ok');
  });
  socket.on('error', (err) =>
    end(!connected ? 'connectError' : err.code === 'ECONNRESET' ? 'reset' : 'reset'),
  );
  socket.on('close', () => end(connected ? 'closedWithoutReply' : 'connectError'));
}

for (let i = 0; i < Math.min(concurrency, total); i++) one();
