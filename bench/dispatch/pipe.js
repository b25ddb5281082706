// The naive proxy every variant runs: one upstream connection per client, piped both ways,
// half-close kept, either side's error or close tears down the other. No per-connection
// closures: the peer is stored on the socket and the listeners are shared functions.
import net from 'node:net';

function onError() {
  this.destroy();
}

function onClose() {
  this.peer.destroy();
}

/**
 * Pipes `client` (paused or not; pipe() resumes it) to 127.0.0.1:`port`.
 * @param {net.Socket} client
 * @param {number} port
 * @param {(() => void) | undefined} onClientClose called once when the client socket closes
 */
export function pipeToUpstream(client, port, onClientClose) {
  const upstream = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
  client.peer = upstream;
  upstream.peer = client;
  client.on('error', onError);
  upstream.on('error', onError);
  client.on('close', onClose);
  upstream.on('close', onClose);
  if (onClientClose !== undefined) client.on('close', onClientClose);
  client.pipe(upstream);
  upstream.pipe(client);
}
