import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { type PortableConfig, withPlugins } from '../config/load-thread.js';
import { armHardStop, DEFAULT_STOP_GRACE } from '../hard-stop.js';
import { Runtime } from '../runtime.js';
import { CLOSE_BACKEND, type ClusterBridge } from './bridge.js';
import {
  isMessage,
  type RegistrySnapshot,
  STATS_INTERVAL,
  type ToPrimary,
  type ToWorker,
} from './messages.js';
import { applyPeers } from './peers.js';
import { workerScheduling } from './scheduling.js';
import { LIST_SESSIONS, type ListSessionsRequest, listSessions } from './session-list.js';
import { applySnapshot, seedFromSnapshot } from './snapshot.js';
import { collectStats } from './stats.js';
import { WorkerListeners } from './worker-listeners.js';

/** How long a worker waits for the primary's first snapshot before starting from its config. */
const SNAPSHOT_WAIT = 10_000;

function send(message: ToPrimary): void {
  if (process.connected) process.send?.(message);
}

/**
 * A worker: the data plane. Builds its Runtime in role `worker` from its generation's config
 * (the primary's, ./worker-config.ts) with the plugins loaded here, takes the primary's
 * registry snapshot before binding, then proxies; reports stats every
 * `STATS_INTERVAL` ms and applies snapshots and requests from the primary. Exits 0 after a
 * graceful stop (the primary's `stop`, SIGTERM/SIGINT, or the primary going away).
 */
export async function runWorker(config: PortableConfig, log: Logger): Promise<void> {
  const handlers = new Map<string, (payload: unknown) => unknown>();
  const bridge: ClusterBridge = {
    role: 'worker',
    request: async () => [],
    handle(topic, handler) {
      handlers.set(topic, handler);
    },
    workerCount: () => 0,
    workers: () => [],
  };

  // The primary timed out a drain: close what this worker still has on that backend, unless
  // the backend takes sessions here again (re-added or undrained since).
  handlers.set(CLOSE_BACKEND, (payload) => {
    const { service: name, address } = payload as { service: string; address: string };
    const service = runtime?.services.get(name);
    if (!service || service.backends.get(address)?.state === 'up') return 0;
    return service.closeSessions('drained', (s) => s.backend?.address === address);
  });
  handlers.set(LIST_SESSIONS, (payload) =>
    runtime ? listSessions(runtime, payload as ListSessionsRequest, workerId()) : null,
  );
  let runtime: Runtime | undefined;
  let version = -1;
  let started = false;
  /** rr: connections received from the primary (reported, so it can tell what is in flight). */
  let handed = 0;
  const scheduling = workerScheduling();
  const listeners =
    scheduling === 'reuseport'
      ? new WorkerListeners((message, handle) => {
          if (process.connected) process.send?.(message, handle as never);
        })
      : undefined;
  let firstSnapshot: (s: RegistrySnapshot | undefined) => void = () => {};
  const gotSnapshot = new Promise<RegistrySnapshot | undefined>((resolve) => {
    firstSnapshot = resolve;
  });

  process.on('message', (raw: unknown, handle: unknown) => {
    if (!isMessage<ToWorker>(raw)) return;
    if (raw.t === 'snapshot') {
      if (raw.snapshot.version <= version) return;
      version = raw.snapshot.version;
      if (started && runtime) applySnapshot(runtime, raw.snapshot, log);
      else firstSnapshot(raw.snapshot);
    } else if (raw.t === 'request') {
      void answer(raw.id, raw.topic, raw.payload);
    } else if (raw.t === 'peers') {
      if (started && runtime) applyPeers(runtime, raw.services);
    } else if (raw.t === 'conn') {
      if (handle === undefined || handle === null) return;
      handed++;
      const service = runtime?.services.get(raw.service);
      if (service !== undefined) service.acceptHanded(raw.index, handle);
      else (handle as { close(): void }).close();
    } else if (raw.t === 'stop') {
      stop('primary');
    } else if (raw.t === 'socket') {
      if (handle === undefined || handle === null) return;
      const service = started ? runtime?.services.get(raw.service) : undefined;
      if (service !== undefined) service.adoptListener(raw.index, raw.slot, handle);
      else if (!started && listeners !== undefined)
        listeners.handed(raw.service, raw.index, raw.slot, handle);
      else (handle as { close(): void }).close();
    } else if (raw.t === 'listen') {
      listeners?.plan(raw.services);
    } else if (raw.t === 'release') {
      if (started) runtime?.services.get(raw.service)?.releaseListeners(raw.slots);
    }
  });

  const answer = async (id: number, topic: string, payload: unknown) => {
    const handler = handlers.get(topic);
    let value: unknown = null;
    try {
      value = handler === undefined ? null : await handler(payload);
    } catch (err) {
      log.error({ err, topic }, 'cluster request failed');
    }
    send({ t: 'reply', id, value });
  };

  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    // Stats keep flowing while draining (the timer is unref'd): the primary counts these sessions until exit.
    log.info({ why }, 'worker stopping: no new connections, draining sessions');
    const done = runtime?.stop() ?? Promise.resolve();
    // Bounded like a single process's stop: a worker whose primary is gone has nobody else to end it.
    const grace = config.stop_grace ?? DEFAULT_STOP_GRACE;
    armHardStop(Math.max(0, ...config.services.map((s) => s.drain_timeout)) + grace, grace, log);
    done.then(
      () => {
        log.info('worker stopped');
        log.flush?.();
        setTimeout(() => process.exit(0), 20);
      },
      (err) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Ctrl-C reaches the whole process group; the primary orders the stop, the worker just drains.
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {}); // the primary reloads by replacing workers
  process.on('disconnect', () => stop('primary gone'));

  try {
    runtime = await Runtime.create(await withPlugins(config), log, {
      role: 'worker',
      cluster: bridge,
      scheduling,
      ...(listeners && { listenSource: listeners }),
    });
    send({ t: 'hello' });
    const timeout = setTimeout(() => firstSnapshot(undefined), SNAPSHOT_WAIT);
    const snapshot = await gotSnapshot;
    clearTimeout(timeout);
    const seeded = snapshot ? seedFromSnapshot(runtime, snapshot) : () => {};
    if (!snapshot) log.warn('no registry snapshot from the primary: starting with the config backends');
    // reuseport: the sockets to take over and the ports to bind come before the start.
    if (listeners !== undefined) await listeners.planned;
    if (stopping) return;
    await runtime.start();
    listeners?.closeUnused();
    seeded();
    started = true;
    if (snapshot) applySnapshot(runtime, snapshot, log);
  } catch (err) {
    listeners?.closeUnused();
    // The primary reports it once for the process (the fatal start line, or the failed reload);
    // the worker's own line, with the stack, is for debugging.
    const e = err as Error & { code?: unknown };
    log.debug({ err }, `worker failed to start: ${e.message}`);
    send({ t: 'failed', message: e.message, code: typeof e.code === 'string' ? e.code : undefined });
    log.flush?.();
    setTimeout(() => process.exit(1), 50);
    return;
  }
  const addresses: Record<string, string[]> = {};
  for (const s of runtime.services.values()) addresses[s.name] = s.addresses();
  send({ t: 'listening', addresses, sessionLimit: finite(runtime.capacity.limit) });
  log.info({ sessionLimit: finite(runtime.capacity.limit) }, 'worker listening');
  const rt = runtime;
  const timer = setInterval(() => send({ t: 'stats', stats: collectStats(rt, handed) }), STATS_INTERVAL);
  timer.unref();
}

/** The cluster's id of this worker (1, 2, ...; a replacement gets a new one). */
function workerId(): number {
  return cluster.worker?.id ?? 0;
}

function finite(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}
