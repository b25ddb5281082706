import { durationSchema, type JsonSchema } from '../../plugin-sdk/index.js';

/** Options as they arrive in `apply` (durations already in ms). */
export interface CircuitBreakerOptions {
  /** Open after this many failures in a row; 0 turns the rule off. */
  consecutive_failures: number;
  /** Open when failures / attempts in `window` reach this ratio; 0 turns the rule off. */
  failure_ratio: number;
  /** Length of the rolling window of the ratio rule (ms). */
  window: number;
  /** Attempts the window must hold before the ratio rule may open the breaker. */
  min_requests: number;
  /** Open time of the first ejection (ms); later ones multiply it. */
  base_ejection_time: number;
  /** Cap of the open time (ms). */
  max_ejection_time: number;
  /** Percent of random time added to each open period. */
  jitter: number;
  /** Each full interval spent closed takes one off the ejection multiplier (ms). */
  decay_interval: number;
  /** Trial sessions admitted at once while half-open. */
  half_open_max: number;
  /** Most backends of the pool that may be open or half-open at once, in percent. */
  max_ejection_percent: number;
}

const duration = (description: string, def: string) => durationSchema(description, { default: def });

export const schema: JsonSchema = {
  type: 'object',
  description: 'Per-backend circuit breaker (closed / open / half-open) with Envoy-style outlier ejection.',
  additionalProperties: false,
  properties: {
    consecutive_failures: {
      type: 'integer',
      minimum: 0,
      maximum: 10_000,
      default: 5,
      description:
        'Open after this many consecutive failures (refused, timed out, reset before the first byte). 0 = off.',
    },
    failure_ratio: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0,
      description:
        'Open when the share of failed attempts in the rolling window reaches this (0..1). 0 = off.',
    },
    window: duration('Rolling window of the failure-ratio rule.', '10s'),
    min_requests: {
      type: 'integer',
      minimum: 1,
      default: 20,
      description: 'Attempts the window must hold before the failure-ratio rule may open the breaker.',
    },
    base_ejection_time: duration(
      'Open time of the first ejection; the n-th ejection in a row lasts n times this.',
      '30s',
    ),
    max_ejection_time: duration('Longest open time, whatever the multiplier.', '5m'),
    jitter: {
      type: 'number',
      minimum: 0,
      maximum: 100,
      default: 10,
      description:
        'Add up to this percentage of random time to each open period, so backends do not return together.',
    },
    decay_interval: duration(
      'Each interval a backend spends closed takes one off its ejection multiplier.',
      '10s',
    ),
    half_open_max: {
      type: 'integer',
      minimum: 1,
      maximum: 10_000,
      default: 1,
      description: 'Trial sessions let through at once while half-open.',
    },
    max_ejection_percent: {
      type: 'integer',
      minimum: 0,
      maximum: 100,
      default: 50,
      description:
        'Most backends (percent of those up) open at once; at least one may always open unless 0. 100 = no cap.',
    },
  },
};

/** Rejects option combinations the schema cannot express. */
export function checkOptions(o: CircuitBreakerOptions): void {
  if (o.consecutive_failures === 0 && o.failure_ratio === 0)
    throw new Error('consecutive_failures and failure_ratio are both 0: the breaker could never open');
  if (o.base_ejection_time <= 0) throw new Error('base_ejection_time must be above 0');
  if (o.max_ejection_time < o.base_ejection_time)
    throw new Error('max_ejection_time must not be shorter than base_ejection_time');
  if (o.failure_ratio > 0 && o.window < 10) throw new Error('window must be at least 10ms');
  if (o.decay_interval <= 0) throw new Error('decay_interval must be above 0');
}
