import type { JsonSchema, OptionIssue } from '../../plugin-sdk/index.js';
import type { KeySource } from './key.js';
import type { Algorithm } from './table.js';

export interface ConsistentHashOptions {
  key: KeySource;
  algorithm: Algorithm;
  table_size?: number;
  ring_points?: number;
  bounded_load?: number;
}

export const DEFAULT_TABLE_SIZE = 65537;
export const MAX_TABLE_SIZE = 5_000_011;
export const DEFAULT_RING_POINTS = 160;

export const schema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    key: {
      description:
        "What is hashed: source_ip (the client IP: one client, one backend), source (IP and port: spreads one client's connections) or sni (the TLS server name a peek-stage plugin found; sessions without one hash by client IP).",
      enum: ['source_ip', 'source', 'sni'],
      default: 'source_ip',
    },
    algorithm: {
      description:
        'maglev (a lookup table: even spread, O(1) lookup) or ring (a hash ring: keys of an unusable backend go to the next backend clockwise).',
      enum: ['maglev', 'ring'],
      default: 'maglev',
    },
    table_size: {
      description: `Maglev only: slots in the lookup table, a prime; at least 100 x the number of backends for an even spread. Default ${DEFAULT_TABLE_SIZE}.`,
      type: 'integer',
      minimum: 3,
      maximum: MAX_TABLE_SIZE,
    },
    ring_points: {
      description: `Ring only: points on the ring per unit of weight (relative to the largest weight). Default ${DEFAULT_RING_POINTS}.`,
      type: 'integer',
      minimum: 1,
      maximum: 10_000,
    },
    bounded_load: {
      description:
        'Consistent hashing with bounded loads (Mirrokni et al.): no backend takes more than this factor x the average sessions per weight; a key whose backend is full goes on to the next one. Unset: no bound.',
      type: 'number',
      minimum: 1,
      maximum: 100,
    },
  },
};

/** Whether `n` is a prime (trial division; n ≤ MAX_TABLE_SIZE). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

function nearestPrimes(n: number): [number | undefined, number | undefined] {
  let below: number | undefined;
  let above: number | undefined;
  for (let k = n - 1; k >= 3 && below === undefined; k--) if (isPrime(k)) below = k;
  for (let k = n + 1; k <= MAX_TABLE_SIZE && above === undefined; k++) if (isPrime(k)) above = k;
  return [below, above];
}

/** What the schema cannot say: a prime table, options of the other algorithm. */
export function checkOptions(o: ConsistentHashOptions): OptionIssue[] {
  const issues: OptionIssue[] = [];
  if (o.table_size !== undefined) {
    if (o.algorithm !== 'maglev')
      issues.push({
        path: ['table_size'],
        message: 'table_size applies to algorithm: maglev; the ring has ring_points',
      });
    else if (!isPrime(o.table_size)) {
      const near = nearestPrimes(o.table_size).filter((p) => p !== undefined);
      issues.push({
        path: ['table_size'],
        message: `table_size ${o.table_size} is not a prime (Maglev needs one); nearest: ${near.join(' or ')}`,
      });
    }
  }
  if (o.ring_points !== undefined && o.algorithm !== 'ring')
    issues.push({ path: ['ring_points'], message: 'ring_points applies to algorithm: ring' });
  return issues;
}
