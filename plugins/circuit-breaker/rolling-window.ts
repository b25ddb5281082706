const BUCKETS = 10;

/**
 * Successes and failures over the last `windowMs`, kept in ten slices that expire one by one
 * (Hystrix's rolling window): constant memory, no timer, no allocation per event.
 */
export class RollingWindow {
  readonly #ok = new Uint32Array(BUCKETS);
  readonly #failed = new Uint32Array(BUCKETS);
  readonly #bucketMs: number;
  #head = 0;
  #headStart: number;

  constructor(windowMs: number, now: number) {
    this.#bucketMs = Math.max(1, Math.ceil(windowMs / BUCKETS));
    this.#headStart = now;
  }

  success(now: number): void {
    this.#advance(now);
    this.#ok[this.#head]!++;
  }

  failure(now: number): void {
    this.#advance(now);
    this.#failed[this.#head]!++;
  }

  /** Takes back a success counted too early (the session was reset before its first byte). */
  retractSuccess(now: number): void {
    this.#advance(now);
    if (this.#ok[this.#head]! > 0) this.#ok[this.#head]!--;
  }

  /** Failures / attempts when the window holds at least `minRequests` attempts, else 0. */
  failureRatio(now: number, minRequests: number): number {
    this.#advance(now);
    let ok = 0;
    let failed = 0;
    for (let i = 0; i < BUCKETS; i++) {
      ok += this.#ok[i]!;
      failed += this.#failed[i]!;
    }
    const total = ok + failed;
    return total >= minRequests ? failed / total : 0;
  }

  counts(now: number): { successes: number; failures: number } {
    this.#advance(now);
    let successes = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      successes += this.#ok[i]!;
      failures += this.#failed[i]!;
    }
    return { successes, failures };
  }

  reset(now: number): void {
    this.#ok.fill(0);
    this.#failed.fill(0);
    this.#head = 0;
    this.#headStart = now;
  }

  #advance(now: number): void {
    const elapsed = now - this.#headStart;
    if (elapsed < this.#bucketMs) return;
    const steps = Math.floor(elapsed / this.#bucketMs);
    if (steps >= BUCKETS) {
      this.#ok.fill(0);
      this.#failed.fill(0);
    } else {
      for (let i = 0; i < steps; i++) {
        this.#head = (this.#head + 1) % BUCKETS;
        this.#ok[this.#head] = 0;
        this.#failed[this.#head] = 0;
      }
    }
    this.#headStart += steps * this.#bucketMs;
  }
}
