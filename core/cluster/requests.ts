import type { Worker } from 'node:cluster';
import type { ClusterBridge, WorkerInfo } from './bridge.js';
import type { ToWorker } from './messages.js';

/** How long the primary waits for a worker's answer to a request, unless the request says otherwise. */
const REPLY_TIMEOUT = 5000;

interface Pending {
  waiting: Set<number>;
  values: unknown[];
  resolve: (values: unknown[]) => void;
  timer: NodeJS.Timeout;
}

/**
 * The primary's side of the cluster bridge: fans a request out to the ready workers and
 * gathers their replies; keeps each topic's last payload for workers that come later.
 */
export class PrimaryRequests implements ClusterBridge {
  readonly role = 'primary' as const;
  readonly #pending = new Map<number, Pending>();
  /** Last payload per topic, replayed to every new worker. */
  readonly #sticky = new Map<string, unknown>();
  #nextId = 1;

  constructor(
    private readonly readyWorkers: () => Worker[],
    /** The primary's view of every live worker (ClusterBridge.workers). */
    readonly workers: () => WorkerInfo[] = () => [],
  ) {}

  request<T = unknown>(
    topic: string,
    payload: unknown,
    options: { sticky?: boolean; timeout?: number } = {},
  ): Promise<T[]> {
    if (options.sticky !== false) this.#sticky.set(topic, payload);
    const workers = this.readyWorkers();
    if (workers.length === 0) return Promise.resolve([]);
    const id = this.#nextId++;
    return new Promise<T[]>((resolve) => {
      const pending: Pending = {
        waiting: new Set(workers.map((w) => w.id)),
        values: [],
        resolve: resolve as (values: unknown[]) => void,
        timer: setTimeout(() => this.#finish(id), options.timeout ?? REPLY_TIMEOUT),
      };
      this.#pending.set(id, pending);
      for (const w of workers) {
        const message: ToWorker = { t: 'request', id, topic, payload };
        try {
          w.send(message);
        } catch {
          this.workerGone(w.id);
        }
      }
    });
  }

  handle(): void {}

  workerCount(): number {
    return this.readyWorkers().length;
  }

  /** Sends every sticky payload to a worker that just said hello (replies are not awaited). */
  replay(worker: Worker): void {
    for (const [topic, payload] of this.#sticky) {
      const message: ToWorker = { t: 'request', id: 0, topic, payload };
      worker.send(message);
    }
  }

  reply(workerId: number, id: number, value: unknown): void {
    const pending = this.#pending.get(id);
    if (!pending?.waiting.delete(workerId)) return;
    pending.values.push(value);
    if (pending.waiting.size === 0) this.#finish(id);
  }

  /** A worker exited: stop waiting for it. */
  workerGone(workerId: number): void {
    for (const [id, pending] of this.#pending) {
      if (pending.waiting.delete(workerId) && pending.waiting.size === 0) this.#finish(id);
    }
  }

  #finish(id: number): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(pending.values);
  }
}
