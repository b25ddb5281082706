import { durationSchema, type JsonSchema } from '../../plugin-sdk/index.js';

/** Options after validation; durations in ms. */
export interface PoolOptions {
  /** Idle sockets kept per backend at least. */
  min_idle: number;
  /** Idle (and connecting) sockets per backend at most. */
  max_idle: number;
  /** Envoy `per_upstream_preconnect_ratio`: spare = ceil(ratio × active) − active. 1 = off. */
  preconnect_ratio: number;
  /** An idle socket older than this is closed and replaced. */
  idle_ttl: number;
  /** Bytes a backend may send to an idle socket (greeting) before the socket is evicted. */
  max_buffered_bytes: number;
  /** Time allowed for one pool connect; unset: the service's connect_timeout; 0: see poolConnectTimeout. */
  connect_timeout?: number;
  /** First back-off delay after a failed pool connect; doubles per failure. */
  backoff_base: number;
  /** Back-off cap. */
  backoff_max: number;
}

const duration = (description: string, def?: string): JsonSchema =>
  durationSchema(description, { default: def });

export const poolSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    min_idle: {
      type: 'integer',
      minimum: 0,
      maximum: 1000,
      default: 2,
      description: 'Warm (connected, unused) sockets kept per backend at least.',
    },
    max_idle: {
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 16,
      description: 'Cap of warm plus connecting sockets per backend.',
    },
    preconnect_ratio: {
      type: 'number',
      minimum: 1,
      maximum: 3,
      default: 1,
      description:
        'Envoy per_upstream_preconnect_ratio: keep ceil(ratio × active) − active warm sockets ' +
        '(at least min_idle). 1 = off; about 1.05 suits long-lived TCP.',
    },
    idle_ttl: duration(
      'Close and replace a warm socket this long after it connected; keep it below the backend idle timeout.',
      '30s',
    ),
    max_buffered_bytes: {
      type: 'integer',
      minimum: 0,
      maximum: 16_777_216,
      default: 65_536,
      description:
        'Bytes a backend may send to a warm socket before it is handed out (greetings); more evicts it.',
    },
    connect_timeout: duration(
      'Time allowed for one pool connect. Default: the service connect_timeout. 0 (none): max(backoff_max, 1s).',
    ),
    backoff_base: duration(
      'First delay after a failed pool connect; doubles per failure, with jitter.',
      '100ms',
    ),
    backoff_max: duration('Cap of the delay between pool connects to a failing backend.', '10s'),
  },
};

/** Cross-field checks ajv cannot express simply. */
export function checkPoolOptions(o: PoolOptions): void {
  if (o.min_idle > o.max_idle) throw new Error(`min_idle (${o.min_idle}) exceeds max_idle (${o.max_idle})`);
  if (o.idle_ttl < 100) throw new Error('idle_ttl must be at least 100ms');
  if (o.backoff_base < 1) throw new Error('backoff_base must be at least 1ms');
  if (o.backoff_max < o.backoff_base) throw new Error('backoff_max must not be below backoff_base');
}
