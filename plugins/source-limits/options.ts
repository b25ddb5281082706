import { cidrListSchema, durationSchema, type JsonSchema, type OptionIssue } from '../../plugin-sdk/index.js';

/** Options as they arrive in `apply` (durations in ms). */
export interface SourceLimitsOptions {
  /** Concurrent sessions per source; 0 = no limit. */
  max_connections: number;
  /** New sessions per source: `"20/s"`, `"300/m"`, `"1000/h"`. */
  rate?: string;
  /** Bucket size (sessions a source may open at once after a quiet spell); default the rate's count. */
  burst?: number;
  /** IPv4 clients are grouped by this many leading bits (32: each address its own source). */
  prefix_v4: number;
  /** IPv6 clients likewise (64: one source per /64, what one host or home usually holds). */
  prefix_v6: number;
  /** Never limited (and not tracked). */
  allow: string[];
  /** Most sources tracked at once; the table never grows past it. */
  max_sources: number;
  /** ms between two warnings about refused clients. */
  log_interval: number;
}

export const RATE_PATTERN = '^([1-9][0-9]{0,8})/(s|m|h)$';
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/** `"20/s"` → 20 sessions per 1000 ms. */
export function parseRate(text: string): { count: number; perMs: number } {
  const m = new RegExp(RATE_PATTERN).exec(text);
  if (m === null) throw new Error(`rate "${text}" is not "<count>/s", "<count>/m" or "<count>/h"`);
  const count = Number(m[1]);
  return { count, perMs: count / UNIT_MS[m[2]!]! };
}

export const schema: JsonSchema = {
  type: 'object',
  description:
    'Per-source limits: concurrent sessions and new sessions per second of each client (or client network), checked in admit with the real client.',
  additionalProperties: false,
  properties: {
    max_connections: {
      type: 'integer',
      minimum: 0,
      maximum: 1_000_000,
      default: 0,
      description: 'Sessions one source may hold at once; more are refused with a reset. 0 = no limit.',
    },
    rate: {
      type: 'string',
      pattern: RATE_PATTERN,
      description:
        'New sessions per source, as "<count>/s", "/m" or "/h" (token bucket: refills continuously, holds `burst`).',
    },
    burst: {
      type: 'integer',
      minimum: 1,
      maximum: 1_000_000,
      description:
        "Sessions a source may open at once after a quiet spell (the bucket's size). Default: the rate's count.",
    },
    prefix_v4: {
      type: 'integer',
      minimum: 0,
      maximum: 32,
      default: 32,
      description: 'Count IPv4 clients by network: 24 makes a whole /24 one source. 32: each address.',
    },
    prefix_v6: {
      type: 'integer',
      minimum: 0,
      maximum: 128,
      default: 64,
      description: 'Count IPv6 clients by network: 64 makes a /64 (one host or site, usually) one source.',
    },
    allow: cidrListSchema('Clients never limited nor tracked (monitoring, your own networks).'),
    max_sources: {
      type: 'integer',
      minimum: 1,
      maximum: 10_000_000,
      default: 100_000,
      description:
        'Most sources tracked at once (memory stays bounded under a flood from many addresses). Idle ones are forgotten first; a new source that finds the table full of busy ones is let through untracked.',
    },
    log_interval: durationSchema('At most one warning about refused clients per interval.', {
      default: '10s',
      minimum: 1,
    }),
  },
};

/** What the schema cannot say: something to limit, and no `burst` without a `rate`. */
export function checkOptions(options: SourceLimitsOptions): OptionIssue[] {
  const issues: OptionIssue[] = [];
  if (options.max_connections === 0 && options.rate === undefined)
    issues.push({
      path: [],
      message: 'set max_connections, rate, or both (neither is set, so nothing would be limited)',
    });
  if (options.burst !== undefined && options.rate === undefined)
    issues.push({ path: ['burst'], message: 'burst is the size of the rate bucket: set rate too' });
  return issues;
}
