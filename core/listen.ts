import type { ListenOptions, Server } from 'node:net';
import { SwitchyardError } from './errors.js';
import { LISTEN_BACKLOG } from './os-limits.js';

/** The error every listener that cannot bind throws: the address as configured, and why. */
export function listenError(address: string, err: NodeJS.ErrnoException): SwitchyardError {
  return new SwitchyardError(
    'SWITCHYARD_E_LISTEN',
    `cannot listen on ${address}: ${err.code ?? err.message}`,
    {
      cause: err,
    },
  );
}

/**
 * Listens `server` on `target` (options, or a listening handle received over IPC, which Node
 * takes as it is) and resolves once it listens; rejects with `listenError(address, …)`.
 */
export function listenOn(server: Server, target: ListenOptions | object, address: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenError(address, err));
    server.once('error', onError);
    const listening = () => {
      server.removeListener('error', onError);
      resolve();
    };
    if ('port' in target) server.listen(target, listening);
    else server.listen(target, LISTEN_BACKLOG, listening);
  });
}
