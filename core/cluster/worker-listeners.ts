import type { Server } from 'node:net';
import type { ListeningHandle, ListenSource } from '../service-placement.js';
import type { ListenHandle, ToPrimary } from './messages.js';

/**
 * A worker's side of `scheduling: reuseport` (the primary's is listener-slots.ts). Before the
 * services start it collects the sockets the primary handed over and the ports to bind for
 * the rest; the services then listen through it (`ListenSource`), and every socket the worker
 * binds itself is sent to the primary, which keeps a copy so the socket outlives this worker.
 */
export class WorkerListeners implements ListenSource {
  readonly #handed = new Map<string, Array<{ slot: number; handle: ListeningHandle }>>();
  #ports: Record<string, number[]> | undefined;
  #planned: () => void = () => {};
  /** Resolves when the primary has said which ports to bind (after any handed-over sockets). */
  readonly planned = new Promise<void>((resolve) => {
    this.#planned = resolve;
  });

  constructor(private readonly send: (message: ToPrimary, handle: ListenHandle) => void) {}

  /** A `socket` message before start: kept for `take`. */
  handed(service: string, index: number, slot: number, handle: ListeningHandle): void {
    const key = `${service}\u0000${index}`;
    let list = this.#handed.get(key);
    if (list === undefined) {
      list = [];
      this.#handed.set(key, list);
    }
    list.push({ slot, handle });
  }

  /** The `listen` message. */
  plan(services: Record<string, number[]>): void {
    this.#ports = services;
    this.#planned();
  }

  take(service: string, index: number): Array<{ slot: number; handle: ListeningHandle }> {
    const key = `${service}\u0000${index}`;
    const list = this.#handed.get(key) ?? [];
    this.#handed.delete(key);
    return list;
  }

  port(service: string, index: number): number {
    return this.#ports?.[service]?.[index] ?? 0;
  }

  bound(service: string, index: number, server: Server): void {
    // The native handle, not the server: the primary must hold the socket, never accept on it.
    const handle = (server as Server & { _handle: ListenHandle })._handle;
    const port = (server.address() as { port: number }).port;
    this.send({ t: 'socket', service, index, port }, handle);
  }

  /** Sockets handed over but never listened on (the start failed, or the listener is gone). */
  closeUnused(): void {
    for (const list of this.#handed.values()) for (const { handle } of list) (handle as ListenHandle).close();
    this.#handed.clear();
  }
}
