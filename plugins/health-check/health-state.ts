import type { HealthPhase } from './api.js';
import type { InitialState } from './options.js';

/**
 * Rise/fall counting for one backend, as HAProxy does it: `fall` consecutive failures mark an
 * up backend down, `rise` consecutive successes mark a down backend up, and any result of the
 * other kind resets the run. Before the first result, `up` and `down` initial states are
 * provisional: that single result decides (HAProxy `init-state up|down`), so a dead backend
 * stops taking sessions after one check instead of `fall`.
 */
export class HealthState {
  healthy: boolean;
  successes = 0;
  failures = 0;
  #provisional: boolean;

  constructor(
    initial: InitialState,
    private readonly rise: number,
    private readonly fall: number,
  ) {
    this.healthy = initial === 'up' || initial === 'fully-up';
    this.#provisional = initial === 'up' || initial === 'down';
  }

  /** Records one check result; returns true when `healthy` flipped. */
  record(ok: boolean): boolean {
    if (ok) {
      this.successes++;
      this.failures = 0;
    } else {
      this.failures++;
      this.successes = 0;
    }
    const decisive = this.#provisional;
    this.#provisional = false;
    if (this.healthy && !ok && (decisive || this.failures >= this.fall)) {
      this.healthy = false;
      return true;
    }
    if (!this.healthy && ok && (decisive || this.successes >= this.rise)) {
      this.healthy = true;
      return true;
    }
    return false;
  }

  get phase(): HealthPhase {
    if (this.healthy) return this.failures > 0 ? 'going-down' : 'up';
    return this.successes > 0 ? 'going-up' : 'down';
  }
}
