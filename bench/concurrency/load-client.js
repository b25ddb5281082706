// One load-generator process of the concurrency benchmark, driven by run.js over IPC.
//   { type: 'ramp', targets: ['127.0.0.1:P', ...], count, rate, maxPending, timeoutMs }
//       opens `count` more connections at `rate`/s round robin over the targets, replies
//       { type: 'ramped', ...stats } at the end (stats count since the process started).
//   { type: 'stats' } → { type: 'stats', ...stats }
//   { type: 'drop', count } → ends `count` held connections, replies { type: 'dropped', count }
//   { type: 'echo', window, timeoutMs } → sends one byte on every held connection, at most
//       `window` in flight, and replies { type: 'echoed', ok, failed, closed, ms }.
// Every reply carries the `id` of its request. Every loop is bounded in count and in time.
// Each process stays far below its open files limit.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { splitAddress } from '../lib/ports.js';

const TICK_MS = 10;
const send = /** @type {NonNullable<typeof process.send>} */ (process.send?.bind(process));

const kEcho = Symbol('echo');
const kConnected = Symbol('connected');
/**
 * A client socket with its state on it, so the handlers below serve every socket without a
 * closure per connection. kEcho: 0 idle, 1 byte sent and unanswered, 2 answered.
 * @typedef {net.Socket & { [kEcho]?: 0 | 1 | 2, [kConnected]?: boolean }} ClientSocket
 */

/** @type {Set<ClientSocket>} Sockets that completed the TCP handshake and have not closed. */
const held = new Set();
const stats = {
  started: 0,
  pending: 0,
  connected: 0,
  held: 0,
  /** ECONNRESET, before or after connect: how a full proxy refuses. */
  resets: 0,
  /** Closed without an error (FIN) after connecting. */
  closedByPeer: 0,
  /** Connect attempts that failed (any code but ECONNRESET). */
  failed: 0,
  errors: /** @type {Record<string, number>} */ ({}),
};

/** Echo bookkeeping of the current round. */
const round = { waiting: 0, ok: 0 };

/** @this {ClientSocket} */
function onConnect() {
  this[kConnected] = true;
  stats.pending--;
  stats.connected++;
  held.add(this);
}

/**
 * @this {ClientSocket}
 * @param {NodeJS.ErrnoException} err
 */
function onError(err) {
  const code = err.code ?? err.message;
  stats.errors[code] = (stats.errors[code] ?? 0) + 1;
  if (code === 'ECONNRESET') stats.resets++;
  else if (!this[kConnected]) stats.failed++;
}

/**
 * @this {ClientSocket}
 * @param {boolean} hadError
 */
function onClose(hadError) {
  if (this[kConnected]) {
    held.delete(this);
    if (!hadError) stats.closedByPeer++;
  } else {
    stats.pending--;
  }
  if (this[kEcho] === 1) {
    this[kEcho] = 0;
    round.waiting--;
  }
}

/** @this {ClientSocket} */
function onData() {
  // One byte was sent; any reply completes this connection's echo.
  if (this[kEcho] === 1) {
    this[kEcho] = 2;
    round.waiting--;
    round.ok++;
  }
}

function snapshot() {
  stats.held = held.size;
  return { ...stats, errors: { ...stats.errors } };
}

/**
 * @param {{ id: number, targets: string[], count: number, rate: number, maxPending: number,
 *   timeoutMs: number }} request
 */
async function ramp({ id, targets, count, rate, maxPending, timeoutMs }) {
  let opened = 0;
  const parsed = targets.map(splitAddress);
  const startedAt = Date.now();
  const deadline = startedAt + timeoutMs;
  while (Date.now() < deadline) {
    const due = Math.min(count, Math.floor(((Date.now() - startedAt) / 1000) * rate) + 1);
    const room = maxPending - stats.pending;
    for (let n = Math.min(due - opened, room); n > 0; n--) {
      const target = parsed[stats.started % parsed.length];
      const socket = net.connect({ host: target.host, port: target.port });
      opened++;
      stats.started++;
      stats.pending++;
      socket.on('connect', onConnect);
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.on('data', onData);
    }
    if (opened >= count && stats.pending === 0) break;
    await sleep(TICK_MS);
  }
  send({
    type: 'ramped',
    id,
    ...snapshot(),
    ms: Date.now() - startedAt,
    timedOut: Date.now() >= deadline,
  });
}

/** @param {{ id: number, window: number, timeoutMs: number }} request */
async function echo({ id, window, timeoutMs }) {
  const startedAt = Date.now();
  const deadline = startedAt + timeoutMs;
  const sockets = [...held];
  round.waiting = 0;
  round.ok = 0;
  let sent = 0;
  let skipped = 0;
  while (Date.now() < deadline && (sent + skipped < sockets.length || round.waiting > 0)) {
    while (round.waiting < window && sent + skipped < sockets.length) {
      const socket = sockets[sent + skipped];
      if (socket.destroyed) {
        skipped++;
        continue;
      }
      socket[kEcho] = 1;
      round.waiting++;
      socket.write('x');
      sent++;
    }
    await sleep(TICK_MS);
  }
  let unanswered = 0;
  let closed = 0;
  for (const socket of sockets) {
    if (socket[kEcho] === 1) unanswered++;
    else if (socket[kEcho] !== 2 && socket.destroyed) closed++;
  }
  send({
    type: 'echoed',
    id,
    ok: round.ok,
    failed: sockets.length - round.ok,
    unanswered,
    closed,
    notSent: sockets.length - sent - skipped,
    ms: Date.now() - startedAt,
  });
  for (const socket of sockets) socket[kEcho] = 0;
}

/**
 * Closes `count` held connections (FIN), to see the proxy take new ones again.
 * @param {{ id: number, count: number }} request
 */
function drop({ id, count }) {
  let n = 0;
  for (const socket of held) {
    if (n++ >= count) break;
    socket.end();
  }
  send({ type: 'dropped', id, count: Math.min(n, count) });
}

process.on('message', (/** @type {any} */ msg) => {
  if (msg?.type === 'ramp') ramp(msg).catch(fail);
  else if (msg?.type === 'drop') drop(msg);
  else if (msg?.type === 'echo') echo(msg).catch(fail);
  else if (msg?.type === 'stats') send({ type: 'stats', id: msg.id, ...snapshot() });
});
process.on('disconnect', () => process.exit(0));
// ESM loading is asynchronous: the parent waits for this before sending anything.
send({ type: 'ready' });

/** @param {unknown} err */
function fail(err) {
  process.stderr.write(`load client: ${err instanceof Error ? err.stack : err}\n`);
  process.exit(1);
}
