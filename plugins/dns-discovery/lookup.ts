import type { Resolver } from 'node:dns/promises';
import { type BackendSpec, formatAddress } from '../../plugin-sdk/index.js';
import type { DnsSettings } from './options.js';

/** What one lookup found. */
export type LookupResult =
  /** Records: the backends, and the shortest TTL seen (seconds), when the answer carried one. */
  | { kind: 'records'; specs: BackendSpec[]; ttl: number | null }
  /** The name exists nowhere (NXDOMAIN) or has no record of the type asked (NODATA). */
  | { kind: 'empty'; code: string };

/** Codes node:dns uses for an answer that says "no such records" (as opposed to a failure). */
const EMPTY = new Set(['ENOTFOUND', 'ENODATA']);

export function isEmptyAnswer(err: unknown): boolean {
  return EMPTY.has((err as NodeJS.ErrnoException)?.code ?? '');
}

/**
 * Looks the name up once. Resolves with the backends (sorted by address, so an unchanged
 * answer in another order changes nothing) or an empty answer; rejects on a failure
 * (timeout, refused, SERVFAIL, bad reply): the caller keeps the last set.
 */
export async function lookup(resolver: Resolver, settings: DnsSettings): Promise<LookupResult> {
  let specs: BackendSpec[];
  let ttl: number | null;
  if (settings.port === null) {
    const found = await srv(resolver, settings);
    if (found.kind === 'empty') return found;
    specs = found.targets;
    ttl = found.ttl;
  } else {
    const port = settings.port;
    const found = await addresses(resolver, settings.name, settings.family);
    if (found.kind === 'empty') return found;
    specs = found.addresses.map((ip) => ({ address: formatAddress(ip, port), weight: settings.weight }));
    ttl = found.ttl;
  }
  const withFields = specs
    .map((s) => ({ ...settings.backend, ...s }))
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { kind: 'records', specs: withFields, ttl };
}

type Addresses =
  | { kind: 'records'; addresses: string[]; ttl: number | null }
  | { kind: 'empty'; code: string };

/** A and/or AAAA records of `name`, with their shortest TTL. */
async function addresses(
  resolver: Resolver,
  name: string,
  family: DnsSettings['family'],
): Promise<Addresses> {
  const asks: Array<Promise<Array<{ address: string; ttl: number }>>> = [];
  if (family !== 'ipv6') asks.push(resolver.resolve4(name, { ttl: true }));
  if (family !== 'ipv4') asks.push(resolver.resolve6(name, { ttl: true }));
  const answers = await Promise.allSettled(asks);
  const records: Array<{ address: string; ttl: number }> = [];
  let emptyCode: string | undefined;
  for (const a of answers) {
    if (a.status === 'fulfilled') records.push(...a.value);
    else if (isEmptyAnswer(a.reason)) emptyCode ??= (a.reason as NodeJS.ErrnoException).code!;
    else throw a.reason;
  }
  if (records.length === 0) return { kind: 'empty', code: emptyCode ?? 'ENODATA' };
  const unique = [...new Set(records.map((r) => r.address))];
  return { kind: 'records', addresses: unique, ttl: Math.min(...records.map((r) => r.ttl)) };
}

type Targets =
  | { kind: 'records'; targets: BackendSpec[]; ttl: number | null }
  | { kind: 'empty'; code: string };

/**
 * SRV records of the lowest priority (RFC 2782: the others are for when those fail, which a
 * proxy with health checks and retries handles itself), each target resolved to its addresses.
 * Weights 0..65535 become 1..256: as they are when the largest is at most 256, else scaled.
 * node:dns gives no TTL for SRV; the targets' A/AAAA TTLs bound the refresh.
 */
async function srv(resolver: Resolver, settings: DnsSettings): Promise<Targets> {
  let records: Array<{ name: string; port: number; priority: number; weight: number }>;
  try {
    records = await resolver.resolveSrv(settings.name);
  } catch (err) {
    if (isEmptyAnswer(err)) return { kind: 'empty', code: (err as NodeJS.ErrnoException).code! };
    throw err;
  }
  if (records.length === 0) return { kind: 'empty', code: 'ENODATA' };
  const best = Math.min(...records.map((r) => r.priority));
  const chosen = records.filter((r) => r.priority === best);
  const largest = Math.max(...chosen.map((r) => r.weight));
  const scale = largest > 256 ? 256 / largest : 1;
  const byTarget = new Map<string, Addresses>();
  await Promise.all(
    [...new Set(chosen.map((r) => r.name))].map(async (target) => {
      byTarget.set(target, await addresses(resolver, target, settings.family));
    }),
  );
  const weights = new Map<string, number>();
  let ttl: number | null = null;
  for (const r of chosen) {
    const found = byTarget.get(r.name)!;
    if (found.kind === 'empty') continue; // a target without addresses contributes nothing
    ttl = ttl === null ? found.ttl : Math.min(ttl, found.ttl ?? ttl);
    const weight = Math.min(256, Math.max(1, Math.round(r.weight * scale)));
    for (const ip of found.addresses) {
      const address = formatAddress(ip, r.port);
      // Two records reaching one address: one backend carrying both shares.
      weights.set(address, Math.min(256, (weights.get(address) ?? 0) + weight));
    }
  }
  if (weights.size === 0) return { kind: 'empty', code: 'ENODATA' };
  return { kind: 'records', targets: [...weights].map(([address, weight]) => ({ address, weight })), ttl };
}
