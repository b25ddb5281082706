import type { ListenSource, ServicePlacement } from '../service-placement.js';
import { SINGLE_PROCESS } from '../service-placement.js';
import { CLOSE_BACKEND, type ClusterBridge, type RuntimeRole } from './bridge.js';
import type { Scheduling } from './scheduling.js';

/**
 * Where a service of a process in `role` runs (core/service-placement.ts). `bridge` is read
 * when a drain times out, so it may be provided after the services are built. A worker's
 * listeners follow its `scheduling`: rr workers take connections the primary accepted,
 * reuseport workers bind (or take over) their own SO_REUSEPORT sockets.
 */
export function placementFor(
  role: RuntimeRole,
  bridge: () => ClusterBridge | undefined,
  worker: { scheduling?: Scheduling; listenSource?: ListenSource } = {},
): ServicePlacement {
  if (role === 'worker')
    return {
      binds: true,
      handedConnections: worker.scheduling === 'rr',
      ...(worker.listenSource && { listenSource: worker.listenSource }),
    };
  if (role === 'primary')
    return {
      binds: false,
      // A drain the primary timed (admin `remove`/`drain` with a timeout) closes the backend's
      // sessions where they live, in the workers.
      closeDrained(service, backend) {
        const payload = { service, address: backend.address };
        // After the registry snapshot of the same change (queued as a microtask): workers must
        // see the backend removed or drained first, or they take the close for a stale one.
        setImmediate(() => {
          void bridge()?.request(CLOSE_BACKEND, payload, { sticky: false });
        });
      },
    };
  return SINGLE_PROCESS;
}
