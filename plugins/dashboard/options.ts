import { durationSchema, type JsonSchema } from '../../plugin-sdk/index.js';
import { BYTES_PER_SLOT, MAX_SAMPLES, memoryBound } from './history.js';
import { MAX_TIMELINE } from './timeline.js';

export interface HistoryOptions {
  /** Between two samples, ms. */
  interval: number;
  /** How far back the history goes, ms. */
  window: number;
  /** Backends (over all services) that get a history; later ones get none. */
  max_backends: number;
}

export interface DashboardOptions {
  /** Admin API path of the page. */
  path: string;
  /** Poll interval of the page, ms (from a duration). */
  refresh: number;
  history: HistoryOptions;
  /** Transitions kept for the timeline. */
  timeline: number;
}

/** samples × backends: at most this many slots (20 bytes each: 20 MB). */
export const MAX_SLOTS = 1_000_000;

const DEFAULT_SAMPLES = 600;
const DEFAULT_BACKENDS = 256;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

export const historySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description:
    `History kept in the proxy for the charts: per service and per backend, ${BYTES_PER_SLOT} bytes per sample ` +
    '(sessions, new sessions/s, bytes/s in and out, connect time; float32 ring buffers), plus 8 bytes per sample ' +
    `for the clock. Memory bound: samples × (max_backends + services) × ${BYTES_PER_SLOT} bytes, where samples = ` +
    `window / interval; with the defaults (600 samples, 256 backends) ${mb(memoryBound(DEFAULT_SAMPLES, DEFAULT_BACKENDS))} ` +
    `plus 12 KB per service. samples × max_backends may not exceed ${MAX_SLOTS.toLocaleString('en-US')} ` +
    `(${mb(MAX_SLOTS * BYTES_PER_SLOT)}).`,
  properties: {
    interval: durationSchema('Time between two samples (100ms to 1m).', { default: '1s' }),
    window: durationSchema(`How far back the history goes (at most ${MAX_SAMPLES} samples).`, {
      default: '10m',
    }),
    max_backends: {
      type: 'integer',
      minimum: 1,
      maximum: 100_000,
      default: DEFAULT_BACKENDS,
      description: 'Backends, over all services, that get a history; later ones are shown without one.',
    },
  },
};

export const TIMELINE_SCHEMA: JsonSchema = {
  type: 'integer',
  minimum: 1,
  maximum: MAX_TIMELINE,
  default: 100,
  description: `Health, breaker and registry transitions kept for the timeline (about 200 bytes each; at most ${MAX_TIMELINE}).`,
};

/** Checks what the schema cannot; returns the number of samples a ring holds. */
export function checkOptions(options: DashboardOptions, assetPrefix: string): number {
  if (options.refresh < 250 || options.refresh > 60_000)
    throw new Error('refresh must be between 250ms and 1m');
  if (options.path.startsWith(`${assetPrefix}/`))
    throw new Error(`path must not be under ${assetPrefix}/ (the page's own files live there)`);
  const { interval, window, max_backends } = options.history;
  if (interval < 100 || interval > 60_000) throw new Error('history.interval must be between 100ms and 1m');
  if (window < interval) throw new Error('history.window must be at least history.interval');
  const samples = Math.ceil(window / interval);
  if (samples > MAX_SAMPLES)
    throw new Error(
      `history.window / history.interval is ${samples} samples; at most ${MAX_SAMPLES} (make the interval longer or the window shorter)`,
    );
  if (samples * max_backends > MAX_SLOTS)
    throw new Error(
      `history: ${samples} samples × ${max_backends} backends is over ${MAX_SLOTS.toLocaleString('en-US')} slots (${mb(MAX_SLOTS * BYTES_PER_SLOT)}); lower max_backends or the window`,
    );
  return samples;
}
