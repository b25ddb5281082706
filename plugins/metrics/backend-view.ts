import type { Backend, Service } from '../../plugin-sdk/index.js';

/**
 * One backend as a scrape reports it: its core counters plus the bytes of its open sessions
 * (this process's, or in a cluster primary the workers' last reported `openBytesIn/Out`).
 */
export interface BackendView {
  backend: Backend;
  /** `backend.bytesIn` (closed sessions) + bytes read from the clients of open sessions. */
  bytesIn: number;
  bytesOut: number;
}

/**
 * The backends of a service at scrape time: registered ones (up, draining) and removed ones
 * that still have sessions, so a drain after removal stays visible until it ends.
 * `backend.bytesIn/bytesOut` only grow when a session closes; adding the live socket counters
 * makes long sessions show. The sum stays monotonic: the core adds a session's bytes to the
 * backend and drops it from `service.sessions` in the same tick.
 */
export function backendViews(service: Service): BackendView[] {
  const views = new Map<Backend, BackendView>();
  for (const backend of service.backends.list()) {
    // Cluster primary: the workers' open sessions so far (0 elsewhere; walked below instead).
    views.set(backend, {
      backend,
      bytesIn: backend.bytesIn + backend.openBytesIn,
      bytesOut: backend.bytesOut + backend.openBytesOut,
    });
  }
  for (const [backend, open] of service.openBytes()) {
    let view = views.get(backend);
    if (view === undefined) {
      view = { backend, bytesIn: backend.bytesIn, bytesOut: backend.bytesOut };
      views.set(backend, view);
    }
    view.bytesIn += open.in;
    view.bytesOut += open.out;
  }
  return [...views.values()];
}
