import { parseNamePattern, wildcardSuffix } from './names.js';
import type { SniRouterOptions } from './options.js';

/** Where one server name goes: a service, and per-protocol exceptions. */
interface NameRoute {
  readonly service: string;
  readonly alpn: ReadonlyMap<string, string> | null;
}

/**
 * The routes of one sni-router, built once from its options (and again on reload). Lookup
 * order: the top-level `alpn` map (the first protocol the client offers that it lists), then
 * the exact name, then the one-label wildcard, then `default`. Per session: one or two Map
 * lookups, and a substring only when no exact name matched.
 */
export class RouteTable {
  readonly #exact = new Map<string, NameRoute>();
  /** Keyed by what follows `*.`: `*.apps.example.com` → `apps.example.com`. */
  readonly #wildcard = new Map<string, NameRoute>();
  readonly #alpn: ReadonlyMap<string, string> | null;
  readonly #default: string | undefined;
  /** Every service a route names, `default` included (for counters and reload checks). */
  readonly targets: ReadonlySet<string>;

  constructor(options: Pick<SniRouterOptions, 'routes' | 'alpn' | 'default'>) {
    const targets = new Set<string>();
    for (const [key, value] of Object.entries(options.routes)) {
      const pattern = parseNamePattern(key);
      // The config check reported bad keys already; options from code get the same message.
      if (typeof pattern === 'string') throw new Error(`routes: ${pattern}`);
      const route: NameRoute =
        typeof value === 'string'
          ? { service: value, alpn: null }
          : {
              service: value.service,
              alpn: value.alpn === undefined ? null : new Map(Object.entries(value.alpn)),
            };
      targets.add(route.service);
      for (const service of route.alpn?.values() ?? []) targets.add(service);
      if ('exact' in pattern) this.#exact.set(pattern.exact, route);
      else this.#wildcard.set(pattern.wildcard, route);
    }
    this.#alpn = options.alpn === undefined ? null : new Map(Object.entries(options.alpn));
    for (const service of this.#alpn?.values() ?? []) targets.add(service);
    this.#default = options.default;
    if (options.default !== undefined) targets.add(options.default);
    this.targets = targets;
  }

  /** The service for a ClientHello's name and protocols; undefined: no route (refuse). */
  match(sni: string | undefined, alpn: readonly string[] | undefined): string | undefined {
    if (alpn !== undefined && this.#alpn !== null) {
      const service = firstOffered(this.#alpn, alpn);
      if (service !== undefined) return service;
    }
    if (sni !== undefined) {
      let route = this.#exact.get(sni);
      if (route === undefined && this.#wildcard.size > 0) {
        const suffix = wildcardSuffix(sni);
        if (suffix !== undefined) route = this.#wildcard.get(suffix);
      }
      if (route !== undefined) {
        if (route.alpn !== null && alpn !== undefined) {
          const service = firstOffered(route.alpn, alpn);
          if (service !== undefined) return service;
        }
        return route.service;
      }
    }
    return this.#default;
  }
}

function firstOffered(map: ReadonlyMap<string, string>, offered: readonly string[]): string | undefined {
  for (const protocol of offered) {
    const service = map.get(protocol);
    if (service !== undefined) return service;
  }
  return undefined;
}
