import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';

export interface ReloadTriggerOptions {
  /** Reload on SIGHUP. */
  sighup: boolean;
  /** Reload when a watched file changes. */
  watch: boolean;
  /** ms to wait after the last change event before reloading. */
  delay: number;
}

/**
 * Calls `reload` on SIGHUP and, debounced, when one of `files` changes. Watches the files'
 * folders rather than the files: certbot swaps symlinks, Kubernetes swaps a `..data` symlink
 * and editors write a temporary file then rename it — a watch on the old inode sees none of
 * that. Events for other names in those folders are ignored.
 */
export class ReloadTrigger {
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #onSighup: (() => void) | undefined;

  constructor(
    readonly options: ReloadTriggerOptions,
    readonly files: string[],
    readonly reload: (trigger: 'SIGHUP' | 'file change') => void,
    readonly log: Logger,
  ) {}

  start(): void {
    if (this.options.sighup) {
      this.#onSighup = () => this.reload('SIGHUP');
      process.on('SIGHUP', this.#onSighup);
    }
    if (!this.options.watch) return;
    const names = new Set(this.files.map((f) => basename(f)));
    const dirs = new Set(this.files.map((f) => dirname(resolve(f))));
    for (const dir of dirs) {
      try {
        const watcher = watch(dir, { persistent: false }, (_event, name) => {
          // `..data` and friends: Kubernetes secret volumes swap a hidden symlink.
          if (name === null || names.has(name) || name.startsWith('..')) this.#schedule();
        });
        watcher.on('error', (err) => this.log.warn({ err, dir }, 'certificate folder watch failed'));
        this.#watchers.push(watcher);
      } catch (err) {
        this.log.warn({ err, dir }, 'cannot watch certificate folder; reload with SIGHUP');
      }
    }
  }

  stop(): void {
    if (this.#onSighup) process.removeListener('SIGHUP', this.#onSighup);
    this.#onSighup = undefined;
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    // Certificate and key are usually written one after the other: wait for both.
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.reload('file change');
    }, this.options.delay);
    this.#timer.unref();
  }
}
