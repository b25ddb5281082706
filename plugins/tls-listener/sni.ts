import type { SecureContext } from 'node:tls';

/** A host name, or `*.` followed by one: the wildcard stands for exactly one label. */
export const SNI_PATTERN =
  '^(\\*\\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$';

/**
 * Certificates by server name. Exact names win over wildcards; `*.example.com` matches
 * `a.example.com` but neither `example.com` nor `a.b.example.com` (RFC 6125, as browsers and
 * HAProxy do). Names compare case-insensitively.
 */
export class SniTable {
  readonly #exact = new Map<string, SecureContext>();
  /** Keyed by the suffix after the wildcard, dot included: `.example.com`. */
  readonly #wildcard = new Map<string, SecureContext>();

  add(pattern: string, context: SecureContext): void {
    const name = pattern.toLowerCase();
    if (name.startsWith('*.')) this.#wildcard.set(name.slice(1), context);
    else this.#exact.set(name, context);
  }

  /** The context for a client's server name, or undefined for the default certificate. */
  lookup(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    const exact = this.#exact.get(name);
    if (exact !== undefined || this.#wildcard.size === 0) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.#wildcard.get(name.slice(dot)) : undefined;
  }

  get size(): number {
    return this.#exact.size + this.#wildcard.size;
  }
}
