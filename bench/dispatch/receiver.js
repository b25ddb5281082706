// The worker's side of the custom dispatch: connections arrive as IPC messages with a handle,
// are piped, and closed ones are reported to the primary in batches (not per connection).
import net from 'node:net';
import { CONN } from './dispatcher.js';
import { pipeToUpstream } from './pipe.js';

/** Serves connections sent by the primary, proxying each to 127.0.0.1:`target`. */
export function receiveConnections(target, reportMs = 20) {
  let closed = 0;
  const onClose = () => {
    closed++;
  };
  process.on('message', (m, handle) => {
    if (m === null || typeof m !== 'object' || m.t !== CONN || handle === undefined) return;
    let socket;
    if (handle instanceof net.Socket) {
      // child_process built it with readable/writable only: allowHalfOpen is false and it is
      // already reading (into its buffer, nothing is lost). Restore the listener's half-close.
      socket = handle;
      socket.allowHalfOpen = true;
    } else {
      socket = new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: true });
    }
    pipeToUpstream(socket, target, onClose);
  });
  setInterval(() => {
    if (closed === 0 || !process.connected) return;
    process.send({ t: 'closed', n: closed });
    closed = 0;
  }, reportMs).unref();
}
