import { parseDuration } from '../../plugin-sdk/index.js';

/** JSON Schemas of the admin API's bodies and query strings (unknown fields are rejected). */

const service = { type: 'string', minLength: 1, maxLength: 200 } as const;
/** A duration in a query string: "5s", "250ms", "1m", or a number of milliseconds. */
const duration = {
  type: 'string',
  pattern: '^(\\d{1,12}|\\d{1,9}(\\.\\d{1,3})?(ms|s|m|h))$',
  description: 'a duration such as "5s", "250ms", "1m" or a number of milliseconds',
} as const;
const address = { type: 'string', minLength: 1, maxLength: 300 } as const;
const weight = { type: 'integer', minimum: 1, maximum: 256 } as const;

/** Longest drain timeout accepted: Node timers overflow past 2^31-1 ms. */
export const MAX_DRAIN_MS = 24 * 3_600_000;

export const serviceQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { service },
} as const;

export const drainQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { service, drain_timeout: duration },
} as const;

export const removeQuery = {
  type: 'object',
  additionalProperties: false,
  required: ['address'],
  properties: { service, address, drain_timeout: duration },
} as const;

export const sessionsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    service,
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    offset: { type: 'integer', minimum: 0, maximum: 10_000_000, default: 0 },
  },
} as const;

export const addressParams = {
  type: 'object',
  additionalProperties: false,
  required: ['address'],
  properties: { address },
} as const;

export const addBody = {
  type: 'object',
  additionalProperties: false,
  required: ['address'],
  properties: {
    address,
    weight,
    tls: { type: 'boolean' },
    insecure_skip_verify: { type: 'boolean' },
  },
} as const;

export const patchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { weight, drain: { type: 'boolean' } },
} as const;

export interface ServiceQuery {
  service?: string;
}
export interface DrainQuery extends ServiceQuery {
  drain_timeout?: string;
}
export interface RemoveQuery extends DrainQuery {
  address: string;
}
export interface SessionsQuery extends ServiceQuery {
  limit: number;
  offset: number;
}
export interface AddBody {
  address: string;
  weight?: number;
  tls?: boolean;
  insecure_skip_verify?: boolean;
}
export interface PatchBody {
  weight?: number;
  drain?: boolean;
}

/** Thrown by handlers for a client mistake the schemas cannot express. */
export class BadRequest extends Error {
  readonly statusCode = 400;
}

/** Milliseconds of a validated `drain_timeout`, or undefined when absent. */
export function drainTimeoutOf(query: DrainQuery): number | undefined {
  const text = query.drain_timeout;
  if (text === undefined) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : parseDuration(text);
  if (ms === undefined || ms > MAX_DRAIN_MS)
    throw new BadRequest(`query.drain_timeout must be at most 24h, got "${text}"`);
  return ms;
}
