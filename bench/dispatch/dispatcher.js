// The primary's side of the custom dispatch: the primary accepts, and hands each connection's
// descriptor to the worker with the fewest active connections with one `worker.send(msg, handle)`.
// No application-level ack per connection: node:child_process already sends one handle per
// channel at a time and waits for its internal NODE_HANDLE_ACK, so the worker's ack would only
// add a message. Active counts come from the worker in batches ({t:'closed', n}).
//
// Two ways to hand a connection over:
//   'socket'  the documented API: a net.Socket from net.createServer({pauseOnConnect:true}).
//             With keepOpen:false (the default) child_process detaches the handle from the socket
//             and closes the primary's copy when the worker's NODE_HANDLE_ACK arrives.
//   'native'  the listening handle's onconnection is replaced (as node:cluster's
//             round_robin_handle.js does) so no net.Socket is built in the primary; the raw TCP
//             handle is sent and closed as soon as the write is done (the kernel holds the file in
//             the SCM_RIGHTS message). Relies on undocumented internals (`server._handle`).
import net from 'node:net';

export const CONN = 't:conn';
const MSG = { t: CONN };
const NO_OPTIONS = {};

function noop() {}

/** One worker as the dispatcher sees it. */
class Target {
  constructor(worker, dispatcher) {
    this.worker = worker;
    this.active = 0; // sent minus reported closed
    this.pending = []; // handles or sockets whose send callback has not run yet (FIFO per channel)
    this.head = 0;
    this.dispatcher = dispatcher;
    this.onSent = (err) => dispatcher.sent(this, err);
  }
}

export class Dispatcher {
  /**
   * @param {{ mode: 'socket' | 'native', guard: import('./fd-guard.js').FdGuard | null }} options
   */
  constructor({ mode, guard }) {
    this.mode = mode;
    this.guard = guard;
    /** @type {Target[]} */
    this.targets = [];
    this.next = 0;
    this.accepted = 0;
    this.refused = 0;
    this.failed = 0;
  }

  /** Adds a cluster worker; its {t:'closed', n} reports lower its active count. */
  add(worker) {
    const target = new Target(worker, this);
    this.targets.push(target);
    worker.on('message', (m) => {
      if (m !== null && typeof m === 'object' && m.t === 'closed') target.active -= m.n;
    });
    worker.once('exit', () => {
      const i = this.targets.indexOf(target);
      if (i >= 0) this.targets.splice(i, 1);
    });
  }

  /** Listens on host:port; resolves with the bound port. */
  listen(port, host) {
    const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) =>
      this.#socket(socket),
    );
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: 511 }, () => {
        server.removeListener('error', reject);
        // Accept errors (EMFILE) arrive here in 'socket' mode; count them instead of crashing.
        server.on('error', () => this.failed++);
        if (this.mode === 'native') server._handle.onconnection = (err, handle) => this.#native(err, handle);
        resolve(server.address().port);
      });
    });
  }

  /** The least-loaded worker, starting the scan after the last choice so ties rotate. */
  #pick() {
    const targets = this.targets;
    const n = targets.length;
    if (n === 0) return null;
    let best = null;
    let start = this.next;
    for (let k = 0; k < n; k++) {
      const t = targets[(start + k) % n];
      if (best === null || t.active < best.active) best = t;
    }
    start = targets.indexOf(best) + 1;
    this.next = start >= n ? 0 : start;
    return best;
  }

  #admit() {
    if (this.guard === null || this.guard.admit()) return true;
    this.refused++;
    this.guard.refused++;
    return false;
  }

  #socket(socket) {
    this.accepted++;
    socket.on('error', noop);
    const target = this.#admit() ? this.#pick() : null;
    if (target === null) {
      socket.resetAndDestroy();
      return;
    }
    this.#send(target, socket);
  }

  #native(err, handle) {
    if (err) {
      this.failed++;
      return;
    }
    this.accepted++;
    const target = this.#admit() ? this.#pick() : null;
    if (target === null) {
      // RST rather than FIN: the client learns at once, and no TIME_WAIT stays here.
      if (handle.reset(noop) !== 0) handle.close();
      return;
    }
    handle.setNoDelay(true);
    this.#send(target, handle);
  }

  #send(target, handleOrSocket) {
    target.active++;
    if (this.guard !== null) this.guard.held++;
    target.pending.push(handleOrSocket);
    target.worker.send(MSG, handleOrSocket, NO_OPTIONS, target.onSent);
  }

  /** Send callback: the message with the descriptor was written (or failed). In order per channel. */
  sent(target, err) {
    const item = target.pending[target.head];
    target.pending[target.head++] = undefined;
    if (target.head > 1024 && target.head * 2 > target.pending.length) {
      target.pending = target.pending.slice(target.head);
      target.head = 0;
    }
    if (this.guard !== null) this.guard.held--;
    if (this.mode === 'native') {
      item.close(); // the kernel keeps the file alive inside the in-flight SCM_RIGHTS message
    } else if (err && item._handle) {
      item.destroy(); // channel closed before the handle was detached
    }
    if (err) {
      target.active--;
      this.failed++;
    }
  }

  stats() {
    return {
      accepted: this.accepted,
      refused: this.refused,
      failed: this.failed,
      active: this.targets.map((t) => t.active),
      queued: this.targets.map((t) => t.pending.length - t.head),
    };
  }
}
