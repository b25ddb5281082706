import type { Logger } from 'pino';
import { pino } from 'pino';
import { definePlugin, formatAddress, type Session } from '../../plugin-sdk/index.js';
import { acquireDestination, releaseDestination } from './destinations.js';

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

interface Options {
  /** Level of the access lines. */
  level: Level;
  /** Write the lines to this file instead of the service log. */
  file?: string;
}

/** One access-log line: what an operator needs to trace a session (HAProxy's TCP log, as JSON). */
export interface AccessLine {
  session: number;
  client: string;
  listener: string;
  /** The service whose backends served it: this one, or the pool a route plugin sent it to. */
  pool: string;
  /** The backend of the last connect attempt; null when none was selected. */
  backend: string | null;
  /** The TLS server name the client asked for (sni-router, PROXY v2); null when unknown. */
  sni: string | null;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Accept to upstream connected; null when it never connected. */
  connectMs: number | null;
  attempts: number;
  reason: Session['closeReason'];
  detail: string | null;
}

export function accessLine(s: Session): AccessLine {
  return {
    session: s.id,
    client: formatAddress(s.remoteAddress, s.remotePort),
    listener: s.listener.address,
    pool: s.pool.name,
    backend: s.backend === null ? null : s.backend.address,
    sni: s.tls?.sni ?? null,
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
    durationMs: s.endedAt - s.startedAt,
    connectMs: s.connectedAt > 0 ? s.connectedAt - s.startedAt : null,
    attempts: s.attempts,
    reason: s.closeReason,
    detail: s.closeDetail,
  };
}

/**
 * One JSON line per closed session (refused ones included), to the service log or to a file.
 * Off unless listed in the config: a line costs a few microseconds per session.
 */
export default definePlugin<Options>({
  name: 'access-log',
  description: 'One log line per closed session: client, backend, bytes, duration, close reason.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      level: {
        type: 'string',
        enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'],
        default: 'info',
        description: 'Level of the access lines.',
      },
      file: {
        type: 'string',
        minLength: 1,
        description: 'Write the lines to this file (appended, asynchronous) instead of the service log.',
      },
    },
  },
  apply(service, options) {
    const { level, file } = options;
    /** Set at start; the tap below is the only per-session code. */
    let logger: Logger | undefined;
    let holdsFile = false;

    service.hooks.closed.tap('access-log', (session) => {
      logger?.[level](accessLine(session), 'session closed');
    });

    service.hooks.start.tapPromise('access-log', async () => {
      let target: Logger;
      if (file === undefined) {
        target = service.log.child({ plugin: 'access-log' });
      } else {
        const dest = await acquireDestination(file, (err) =>
          service.log.error({ err, file }, 'access log write failed'),
        );
        holdsFile = true;
        target = pino({ level, base: { service: service.name } }, dest);
      }
      if (!target.isLevelEnabled(level)) {
        service.log.warn({ level }, 'access-log lines are below the log level and will not be written');
        return;
      }
      logger = target;
    });

    service.hooks.stop.tapPromise('access-log', async () => {
      logger = undefined;
      if (holdsFile) {
        holdsFile = false;
        await releaseDestination(file!);
      }
    });
  },
});
