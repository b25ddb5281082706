import { formatIp, formatIpv6, isIpv4, parseIp } from '../../plugin-sdk/index.js';

/** What is tracked of one source (an address, or a network with a prefix). */
export interface SourceEntry {
  /** Sessions this source holds now. */
  active: number;
  /** Token bucket: sessions it may still open now (fractional while refilling). */
  tokens: number;
  /** `Date.now()` of the last refill. */
  stamp: number;
}

export interface TableSettings {
  prefixV4: number;
  prefixV6: number;
  maxSources: number;
  /** Bucket size; tokens per ms (0: no rate limit). */
  burst: number;
  perMs: number;
}

/** Entries looked at when a new source finds the table full (bounded work per connection). */
const EVICT_SCAN = 64;

/**
 * The sources seen recently, keyed by address or network. Bounded: at most `maxSources`
 * entries; an entry is forgotten once it holds no session and its bucket has refilled (it
 * then says nothing a fresh entry would not), by a periodic sweep and, when the table is full,
 * by a bounded scan from the oldest entries. Entries holding sessions are never dropped, so
 * counts stay exact.
 */
export class SourceTable {
  readonly #entries = new Map<string, SourceEntry>();
  readonly #scratch = new Uint8Array(16);
  /** Entries forgotten to make room or by the sweep. */
  evicted = 0;

  constructor(private readonly settings: TableSettings) {}

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The key of a client address: the address itself for whole IPv4 addresses (no allocation),
   * else its network as `a.b.c.d/p` or `2001:db8::/p`. Null when it is not an IP address.
   */
  keyOf(address: string): string | null {
    const { prefixV4, prefixV6 } = this.settings;
    const plainV4 = address.indexOf(':') < 0;
    if (plainV4 && prefixV4 === 32) return parseIp(address, this.#scratch) === null ? null : address;
    const bytes = parseIp(address, this.#scratch);
    if (bytes === null) return null;
    if (isIpv4(bytes)) {
      if (prefixV4 === 32) return formatIp(bytes);
      maskFrom(bytes, 96 + prefixV4);
      return `${formatIp(bytes)}/${prefixV4}`;
    }
    maskFrom(bytes, prefixV6);
    // As CIDR text (`2001:db8:1:2::/64`): the admin API and the logs show it as is.
    return `${formatIpv6(bytes)}/${prefixV6}`;
  }

  get(key: string): SourceEntry | undefined {
    return this.#entries.get(key);
  }

  /** A fresh entry for `key` (full bucket), or null when the table is full of busy sources. */
  create(key: string, now: number): SourceEntry | null {
    if (this.#entries.size >= this.settings.maxSources && !this.#makeRoom(now)) return null;
    const entry: SourceEntry = { active: 0, tokens: this.settings.burst, stamp: now };
    this.#entries.set(key, entry);
    return entry;
  }

  /** Refills the bucket to `now`; returns whether a token was taken. */
  take(entry: SourceEntry, now: number): boolean {
    const { burst, perMs } = this.settings;
    if (entry.tokens < burst) {
      const elapsed = now > entry.stamp ? now - entry.stamp : 0;
      entry.tokens = Math.min(burst, entry.tokens + elapsed * perMs);
    }
    entry.stamp = now;
    if (entry.tokens < 1) return false;
    entry.tokens -= 1;
    return true;
  }

  /** Holds no session and its bucket is full again: forgetting it changes nothing. */
  #idle(entry: SourceEntry, now: number): boolean {
    if (entry.active > 0) return false;
    const { burst, perMs } = this.settings;
    if (perMs === 0 || entry.tokens >= burst) return true;
    return entry.tokens + (now - entry.stamp) * perMs >= burst;
  }

  /** Frees at least one slot, looking at no more than EVICT_SCAN of the oldest entries. */
  #makeRoom(now: number): boolean {
    let freed = false;
    let looked = 0;
    const busy: Array<[string, SourceEntry]> = [];
    for (const [key, entry] of this.#entries) {
      if (looked++ >= EVICT_SCAN) break;
      if (this.#idle(entry, now)) {
        this.#entries.delete(key);
        this.evicted++;
        freed = true;
      } else busy.push([key, entry]);
    }
    // Busy ones go to the back, so the next scan looks at others.
    for (const [key, entry] of busy) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return freed;
  }

  /** Forgets every idle entry (the periodic sweep). Returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const [key, entry] of this.#entries) {
      if (this.#idle(entry, now)) {
        this.#entries.delete(key);
        n++;
      }
    }
    this.evicted += n;
    return n;
  }

  /** The busiest sources, for the admin API. */
  top(limit: number, now: number): Array<{ source: string; active: number; tokens: number }> {
    const { burst, perMs } = this.settings;
    const all: Array<{ source: string; active: number; tokens: number }> = [];
    for (const [source, e] of this.#entries) {
      const tokens = perMs === 0 ? burst : Math.min(burst, e.tokens + Math.max(0, now - e.stamp) * perMs);
      all.push({ source, active: e.active, tokens: Math.floor(tokens * 100) / 100 });
    }
    all.sort((a, b) => b.active - a.active || a.tokens - b.tokens);
    return all.slice(0, limit);
  }
}

/** Zeroes every bit of `bytes` from bit `bits` on. */
function maskFrom(bytes: Uint8Array, bits: number): void {
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
}
