import type { EnabledPlugin, Service } from '../../plugin-sdk/index.js';

/** The built-in balancers, whose name the topology shows on the service's node. */
const BALANCERS = new Set(['round-robin', 'least-connections', 'p2c', 'consistent-hash']);

/** A route from a listening service to another service's pool (sni-router). */
export interface RouteEdge {
  /** What matches: `sni api.example.com`, `alpn h2`, `default`. */
  match: string;
  service: string;
}

/** One service as the topology draws it: listeners → service → backends, routes to pools. */
export interface ServiceNode {
  name: string;
  /** Configured listeners; a pool (sessions only arrive through routes) has none. */
  listen: string[];
  /** The balancer and its key (`consistent-hash (source-ip)`), when a built-in one. */
  balancer: string | null;
  /** PROXY protocol: `accept` (from load balancers in front) and/or `send vN` (to backends). */
  proxyProtocol: string[];
  /** TLS terminated on the listeners (tls-listener). */
  tls: boolean;
  /** sni-router routes to other services' pools. */
  routes: RouteEdge[];
  /** Every service-scope plugin, in config order. */
  plugins: string[];
}

function plugin(service: Service, name: string): EnabledPlugin | undefined {
  return service.config.plugins.find((p) => p.name === name);
}

/** The sni-router's table as edges; the options are validated already, read defensively all the same. */
function routes(options: Record<string, unknown>): RouteEdge[] {
  const out: RouteEdge[] = [];
  const target = (v: unknown): string | undefined =>
    typeof v === 'string'
      ? v
      : typeof (v as { service?: unknown })?.service === 'string'
        ? (v as { service: string }).service
        : undefined;
  for (const [protocol, service] of Object.entries((options.alpn ?? {}) as Record<string, unknown>))
    if (typeof service === 'string') out.push({ match: `alpn ${protocol}`, service });
  for (const [name, route] of Object.entries((options.routes ?? {}) as Record<string, unknown>)) {
    const service = target(route);
    if (service !== undefined) out.push({ match: `sni ${name}`, service });
    const alpn = (route as { alpn?: Record<string, unknown> })?.alpn;
    if (alpn && typeof alpn === 'object')
      for (const [protocol, s] of Object.entries(alpn))
        if (typeof s === 'string') out.push({ match: `sni ${name} + alpn ${protocol}`, service: s });
  }
  if (typeof options.default === 'string') out.push({ match: 'default', service: options.default });
  return out;
}

export function serviceNode(service: Service): ServiceNode {
  const plugins = service.config.plugins.map((p) => p.name);
  const balancerPlugin = service.config.plugins.find((p) => BALANCERS.has(p.name));
  let balancer = balancerPlugin?.name ?? null;
  if (balancerPlugin?.name === 'consistent-hash' && typeof balancerPlugin.options.key === 'string')
    balancer = `consistent-hash (${balancerPlugin.options.key})`;
  const proxyProtocol: string[] = [];
  const pp = plugin(service, 'proxy-protocol')?.options;
  if (pp?.accept === true) proxyProtocol.push('accept');
  if (typeof pp?.send === 'string' || typeof pp?.send === 'number') proxyProtocol.push(`send ${pp.send}`);
  const sni = plugin(service, 'sni-router');
  return {
    name: service.name,
    listen: [...service.config.listen],
    balancer,
    proxyProtocol,
    tls: plugin(service, 'tls-listener') !== undefined,
    routes: sni === undefined ? [] : routes(sni.options),
    plugins,
  };
}
