import { durationSchema, formatAddress, type JsonSchema, parseAddress } from '../../plugin-sdk/index.js';

/** What happens to a session when the backend it would get is full. */
export type Overflow = 'queue' | 'next' | 'refuse';

export interface LimitOverride {
  max_connections?: number;
  max_pending?: number;
}

/** Options as they arrive in `apply` (durations already in ms). */
export interface BackendLimitsOptions {
  max_connections: number;
  max_pending: number;
  overflow: Overflow;
  queue_size: number;
  queue_timeout: number;
  /** Per-backend overrides keyed by `host:port`. */
  backends: Record<string, LimitOverride>;
}

const limit = (description: string) => ({
  type: 'integer',
  minimum: 0,
  description: `${description} 0 = no limit.`,
});

export const schema: JsonSchema = {
  type: 'object',
  description: 'Per-backend concurrency limits (HAProxy maxconn + queue, Envoy circuit-breaker thresholds).',
  additionalProperties: false,
  properties: {
    max_connections: {
      ...limit('Sessions a backend may hold at once, connecting or established (HAProxy maxconn).'),
      default: 0,
    },
    max_pending: { ...limit('Connects a backend may have in progress at once.'), default: 0 },
    overflow: {
      type: 'string',
      enum: ['queue', 'next', 'refuse'],
      default: 'queue',
      description:
        'queue: skip full backends, wait in a queue when all are full. next: skip full backends, refuse when all are full. refuse: refuse when the balancer picks a full backend.',
    },
    queue_size: {
      type: 'integer',
      minimum: 1,
      default: 1024,
      description: 'Sessions that may wait at once (overflow: queue); more are refused with queue-full.',
    },
    queue_timeout: durationSchema(
      'Longest wait in the queue before the session is refused with queue-timeout (HAProxy timeout queue).',
      { default: '5s', minimum: 1 },
    ),
    backends: {
      type: 'object',
      description: 'Limits of single backends, keyed by "host:port"; they replace the defaults above.',
      default: {},
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          max_connections: limit('Sessions this backend may hold at once.'),
          max_pending: limit('Connects this backend may have in progress at once.'),
        },
      },
    },
  },
};

/** Overrides keyed by canonical address; throws on an address that does not parse. */
export function canonicalOverrides(raw: Record<string, LimitOverride>): Map<string, LimitOverride> {
  const out = new Map<string, LimitOverride>();
  for (const [address, o] of Object.entries(raw)) {
    const parsed = parseAddress(address);
    if (typeof parsed === 'string') throw new Error(`backends."${address}": ${parsed}`);
    out.set(formatAddress(parsed.host, parsed.port), o);
  }
  return out;
}
