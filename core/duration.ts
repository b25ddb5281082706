import type { JsonSchema } from './json-schema.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Durations in config: a number of milliseconds or text such as `250ms`, `5s`, `1m`, `1.5h`. */
export const DURATION_PATTERN = PATTERN.source;

/**
 * The longest duration a config may hold: what a Node.js timer can wait (2^31 - 1 ms, about
 * 24.8 days). Node runs a longer `setTimeout` after 1 ms instead, so `drain_timeout: 600h`
 * would close every session at once; the schema refuses it rather than clamp it silently.
 */
export const MAX_DURATION_MS = 2_147_483_647;

/** Returns milliseconds, or undefined when the input is not a duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = PATTERN.exec(value.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

/** The config error for a duration above `MAX_DURATION_MS`. */
export function durationTooLong(ms: number): string {
  return `is ${ms} ms, longer than a timer can wait: at most ${MAX_DURATION_MS} ms (about 24.8 days, e.g. "596h")`;
}

export interface DurationSchemaOptions {
  /** Default value, as written in config (`'5s'`) or in ms. Omitted: the key has no default. */
  default?: string | number;
  /** Least value in ms (numbers only; text such as `"0s"` is checked by the plugin). Default 0. */
  minimum?: number;
}

/**
 * The JSON Schema of one duration option: a number of ms or text such as `"250ms"`, `"5s"`,
 * `"1m"`, `"1h"`, at most `MAX_DURATION_MS`. The plugin receives milliseconds in `apply`
 * (the `x-duration` keyword converts while validating).
 *
 *   schema: { type: 'object', properties: { interval: durationSchema('Time between probes.', { default: '2s' }) } }
 */
export function durationSchema(description: string, options: DurationSchemaOptions = {}): JsonSchema {
  return {
    description: `${description} A number of milliseconds or text such as "250ms", "5s", "1m", "1h"; at most 24.8 days.`,
    type: ['integer', 'string'],
    minimum: options.minimum ?? 0,
    pattern: DURATION_PATTERN,
    ...(options.default === undefined ? {} : { default: options.default }),
    'x-duration': true,
  };
}
