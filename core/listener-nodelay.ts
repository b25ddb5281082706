import type { Server } from 'node:net';

/**
 * Linux copies TCP_NODELAY from a listening socket to the connections accepted on it, so the
 * core sets it once per listener (`noDelayOnListener`) instead of once per connection (one
 * `setsockopt` less per session). Elsewhere node:net sets it on each accepted socket.
 */
export const NODELAY_INHERITED = process.platform === 'linux';

/**
 * Sets TCP_NODELAY on a listening server's socket so accepted connections inherit it (Linux).
 * Where the native handle offers no `setNoDelay`, node:net sets it per connection instead.
 */
export function noDelayOnListener(server: Server): void {
  const handle = (server as Server & { _handle?: { setNoDelay?(on: boolean): number } | null })._handle;
  if (NODELAY_INHERITED && typeof handle?.setNoDelay === 'function' && handle.setNoDelay(true) === 0) return;
  (server as Server & { noDelay: boolean }).noDelay = true;
}
