import { isIpv4, parseIp } from './ip.js';
import type { JsonSchema } from './json-schema.js';

/** One network: a 16-byte address (IPv4 mapped) and how many leading bits must match. */
export interface Cidr {
  /** As written in the config. */
  readonly text: string;
  readonly bytes: Uint8Array;
  /** 0..128, counted on the 16-byte form (an IPv4 `/8` is 104). */
  readonly bits: number;
}

/**
 * Parses `address/bits` or a bare address (one host). IPv4 networks also match the same
 * clients seen as IPv4-mapped IPv6 (`::ffff:10.0.0.1` on a `[::]` listener). Returns an error
 * message instead of throwing, so callers can say where.
 */
export function parseCidr(text: string): Cidr | string {
  if (typeof text !== 'string') return 'must be a string such as "10.0.0.0/8" or "2001:db8::/32"';
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(address);
  if (bytes === null || address.includes('%'))
    return `"${text}" is not an IP network: write "10.0.0.0/8", "2001:db8::/32" or one address`;
  const v4 = isIpv4(bytes) && !address.includes(':');
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const bitsText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max)
      return `"${text}": the prefix length must be 0 to ${max}`;
    bits = Number(bitsText);
  }
  const total = v4 ? bits + 96 : bits;
  return { text, bytes: masked(bytes, total), bits: total };
}

function masked(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

function contains(cidr: Cidr, address: Uint8Array): boolean {
  const full = cidr.bits >> 3;
  for (let i = 0; i < full; i++) if (address[i] !== cidr.bytes[i]) return false;
  const rest = cidr.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address[full]! & mask) === cidr.bytes[full];
}

/**
 * A list of networks to test client addresses against (trusted proxies, allow lists). Build it
 * once, in `apply`; `has` parses into a reused buffer, so it allocates nothing per connection.
 *
 *   const trusted = CidrList.parse(options.trusted);   // throws on a bad entry, naming it
 *   if (!trusted.has(session.peerAddress)) return { reason: 'untrusted' };
 */
export class CidrList {
  readonly #cidrs: readonly Cidr[];
  readonly #scratch = new Uint8Array(16);

  constructor(cidrs: readonly Cidr[]) {
    this.#cidrs = cidrs;
  }

  /** Parses every entry; throws an Error naming the first bad one (with its position). */
  static parse(list: readonly string[], what = 'networks'): CidrList {
    const cidrs: Cidr[] = [];
    list.forEach((text, i) => {
      const cidr = parseCidr(text);
      if (typeof cidr === 'string') throw new Error(`${what}[${i}]: ${cidr}`);
      cidrs.push(cidr);
    });
    return new CidrList(cidrs);
  }

  get size(): number {
    return this.#cidrs.length;
  }

  /** True when `address` (text, as `socket.remoteAddress` gives it) is in one of the networks. */
  has(address: string): boolean {
    const bytes = parseIp(address, this.#scratch);
    return bytes !== null && this.hasBytes(bytes);
  }

  /** The same for an address already in its 16-byte form (`parseIp`). */
  hasBytes(bytes: Uint8Array): boolean {
    for (const cidr of this.#cidrs) if (contains(cidr, bytes)) return true;
    return false;
  }

  /** The entries as written. */
  toJSON(): string[] {
    return this.#cidrs.map((c) => c.text);
  }
}

/**
 * The JSON Schema of a list of networks (`["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]`).
 * Each entry is checked while the config is validated (the `x-cidr` keyword), so a bad one is
 * a config error at its line and column.
 */
export function cidrListSchema(description: string, options: { minItems?: number } = {}): JsonSchema {
  return {
    type: 'array',
    description: `${description} IPv4 or IPv6 networks ("10.0.0.0/8", "2001:db8::/32") or single addresses.`,
    minItems: options.minItems ?? 0,
    maxItems: 10_000,
    items: { type: 'string', minLength: 1, maxLength: 64, 'x-cidr': true },
  };
}
