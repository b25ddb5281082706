import type { Rejection, Runtime } from '../../plugin-sdk/index.js';

/** What `POST` and `GET /force_disconnect` answer. */
export interface ForceDisconnectState {
  enabled: boolean;
  /** Sessions closed by the last enable (0 before the first). */
  closed: number;
  /** When `enabled` last changed (ISO time); the plugin's start when it never did. */
  since: string;
}

/** Shared through `runtime.provide('force-disconnect', ...)` for callers other than HTTP. */
export interface ForceDisconnect {
  /** The one place the state changes; a multi-process mode forwards this call to each worker. */
  set(enabled: boolean): ForceDisconnectState;
  state(): ForceDisconnectState;
}

/** One frozen object for every refused connection: refusing allocates nothing. */
const REJECTION: Rejection = Object.freeze({ reason: 'force-disconnect' });

/**
 * The switch. While on, every service's `accept` refuses new connections (one closure
 * variable read per connection). Turning it on closes every session of every service, client
 * and upstream sockets together.
 */
export function createSwitch(runtime: Runtime): ForceDisconnect {
  let enabled = false;
  let closed = 0;
  let since = new Date().toISOString();
  const log = runtime.log.child({ plugin: 'force-disconnect' });

  for (const service of runtime.services.values())
    service.hooks.accept.tap('force-disconnect', () => (enabled ? REJECTION : undefined));

  const state = (): ForceDisconnectState => ({ enabled, closed, since });
  return {
    state,
    set(next) {
      if (next !== enabled) since = new Date().toISOString();
      enabled = next;
      if (next) {
        // Refuse first, then close: nothing accepted in between survives.
        closed = 0;
        for (const service of runtime.services.values()) closed += service.closeSessions('killed');
        log.warn({ closed }, 'force-disconnect on: all sessions closed, new connections refused');
      } else {
        log.warn('force-disconnect off: accepting connections again');
      }
      return state();
    },
  };
}
