/** Crashes older than this no longer count towards the back-off. */
const WINDOW = 60_000;
const BASE = 250;
const MAX = 30_000;

/**
 * Delay before forking a replacement worker: none for an isolated crash, then doubling from
 * 250 ms up to 30 s while workers keep crashing (a bad plugin, a config that fails at run
 * time), so a crash loop does not burn a CPU forking.
 */
export class RespawnBackoff {
  readonly #crashes: number[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  next(): number {
    const t = this.now();
    while (this.#crashes.length > 0 && t - this.#crashes[0]! > WINDOW) this.#crashes.shift();
    this.#crashes.push(t);
    const n = this.#crashes.length;
    return n <= 1 ? 0 : Math.min(MAX, BASE * 2 ** (n - 2));
  }
}
