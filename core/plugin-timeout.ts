import type { Hook } from 'tapable';
import { SwitchyardError } from './errors.js';

/** `plugin_timeout` when the config does not say: generous for a cold disk, short of forever. */
export const DEFAULT_PLUGIN_TIMEOUT = 30_000;

/** `30000` → `30s`, `1500` → `1500ms`. */
export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * Settles like `promise`, or rejects with `error()` once `ms` have passed. The timer is not
 * unref'ed on purpose: a promise that never settles keeps nothing alive, and without the timer
 * the process would end with code 0 having done nothing (what a supervisor takes for success).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Bounds every asynchronous tap of a start hook by `ms`: a plugin whose start never finishes
 * fails the start (or the reload) with its name instead of leaving the process half started.
 * Taps registered before and after this call are both bounded (a tapable interceptor).
 */
export function limitStartTaps(hook: Hook<any, any>, ms: number, where: string): void {
  const error = (name: string) => () =>
    new SwitchyardError(
      'SWITCHYARD_E_PLUGIN_TIMEOUT',
      `plugin "${name}" did not finish starting within ${formatMs(ms)} (${where}); raise plugin_timeout if it needs longer`,
    );
  hook.intercept({
    register(tap) {
      const fn = tap.fn as (...args: unknown[]) => unknown;
      if (tap.type === 'promise')
        return {
          ...tap,
          fn: (...args: unknown[]) => withTimeout(Promise.resolve(fn(...args)), ms, error(tap.name)),
        };
      if (tap.type === 'async')
        return {
          ...tap,
          fn: (...args: unknown[]) => {
            const callback = args.pop() as (err?: unknown) => void;
            withTimeout(
              new Promise<void>((resolve, reject) =>
                fn(...args, (err?: unknown) => (err ? reject(err) : resolve())),
              ),
              ms,
              error(tap.name),
            ).then(() => callback(), callback);
          },
        };
      return tap;
    },
  });
}
