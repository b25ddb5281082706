import type { Rejection, Session } from '../../plugin-sdk/index.js';
import type { LimitCounters } from './api.js';

/** What the core's `unavailable` hook gets back for a queued session. */
export type QueueAnswer = 'retry' | Rejection;

/** `session.data` key of the session's place in the queue. */
export const WAITER = 'backend-limits.waiter';

/** One queued session. Lives on in `session.data` after it is woken, in case it must wait again. */
interface Waiter {
  session: Session;
  resolve: (answer: QueueAnswer) => void;
  /** Epoch ms after which it is refused with `queue-timeout`. */
  deadline: number;
  timer: NodeJS.Timeout | null;
  state: 'queued' | 'woken' | 'dialling' | 'done';
}

const QUEUE_FULL: Rejection = Object.freeze({ reason: 'queue-full' });
const QUEUE_TIMEOUT: Rejection = Object.freeze({ reason: 'queue-timeout' });

/**
 * The FIFO of sessions waiting for a backend slot (HAProxy's backend queue). Each waiter is
 * the pending answer of the core's `unavailable` hook: `'retry'` when a slot frees, a
 * rejection on timeout or when the queue is full.
 */
export class WaitQueue {
  readonly #waiters: Waiter[] = [];
  /** Woken sessions that have not dialled yet: their slots are spoken for. */
  #woken = 0;

  constructor(
    private readonly size: number,
    private readonly timeout: number,
    private readonly counters: LimitCounters,
  ) {}

  get length(): number {
    return this.#waiters.length;
  }

  /** Slots promised to woken sessions that have not reached `candidates` yet. */
  get promised(): number {
    return this.#woken;
  }

  /**
   * Queues a session. A woken session that found no room after all goes back to the head,
   * with what was left of its time.
   */
  wait(session: Session): Promise<QueueAnswer> {
    const back = session.data[WAITER] as Waiter | undefined;
    if (back !== undefined && back.state !== 'done') {
      this.#settleWoken(back);
      const left = back.deadline - Date.now();
      if (left <= 0) return Promise.resolve(this.#timedOut(back));
      return new Promise((resolve) => {
        back.resolve = resolve;
        back.state = 'queued';
        back.timer = setTimeout(this.#onTimeout, left, back);
        this.#waiters.unshift(back);
      });
    }
    if (this.#waiters.length >= this.size) {
      this.counters.queueFull++;
      return Promise.resolve(QUEUE_FULL);
    }
    return new Promise((resolve) => {
      const w: Waiter = {
        session,
        resolve,
        deadline: Date.now() + this.timeout,
        timer: null,
        state: 'queued',
      };
      w.timer = setTimeout(this.#onTimeout, this.timeout, w);
      session.data[WAITER] = w;
      this.#waiters.push(w);
      this.counters.queued++;
      if (this.#waiters.length > this.counters.maxQueueLength)
        this.counters.maxQueueLength = this.#waiters.length;
    });
  }

  /** Wakes up to `n` sessions, oldest first. */
  wake(n: number): void {
    while (n-- > 0 && this.#waiters.length > 0) {
      const w = this.#waiters.shift()!;
      clearTimeout(w.timer!);
      w.timer = null;
      w.state = 'woken';
      this.#woken++;
      this.counters.dequeued++;
      w.resolve('retry');
    }
  }

  /** A session reached `candidates`: true when it comes from the queue (it may take a slot). */
  admitted(session: Session): boolean {
    const w = session.data[WAITER] as Waiter | undefined;
    if (w === undefined) return false;
    this.#settleWoken(w);
    return w.state !== 'done';
  }

  /**
   * A dequeued session's connect ended. Its wait is over: should the connect have failed and
   * every backend be full on the retry, it queues again as a newcomer, with a fresh timeout.
   */
  connectEnded(session: Session): void {
    const w = session.data[WAITER] as Waiter | undefined;
    if (w === undefined || w.state !== 'dialling') return;
    w.state = 'done';
    session.data[WAITER] = undefined;
  }

  /** The session ended: forget it, wherever it is. */
  closed(session: Session): void {
    const w = session.data[WAITER] as Waiter | undefined;
    if (w === undefined) return;
    this.#settleWoken(w);
    if (w.state === 'queued') {
      this.#remove(w);
      this.counters.abandoned++;
      // The core ignores the answer of a closed session; resolving frees the hook's promise.
      w.resolve(QUEUE_TIMEOUT);
    }
    w.state = 'done';
  }

  /** Service stop: no timer may outlive it. */
  clear(): void {
    for (const w of this.#waiters) {
      if (w.timer !== null) clearTimeout(w.timer);
      w.state = 'done';
      w.resolve({ reason: 'shutdown' });
    }
    this.#waiters.length = 0;
  }

  #settleWoken(w: Waiter): void {
    if (w.state === 'woken') {
      w.state = 'dialling';
      this.#woken--;
    }
  }

  readonly #onTimeout = (w: Waiter): void => {
    w.timer = null;
    if (w.state !== 'queued') return;
    this.#remove(w);
    w.resolve(this.#timedOut(w));
  };

  #timedOut(w: Waiter): Rejection {
    w.state = 'done';
    this.counters.timeouts++;
    return QUEUE_TIMEOUT;
  }

  #remove(w: Waiter): void {
    if (w.timer !== null) clearTimeout(w.timer);
    w.timer = null;
    const i = this.#waiters.indexOf(w);
    if (i >= 0) this.#waiters.splice(i, 1);
  }
}
