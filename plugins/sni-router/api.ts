/** What other plugins and tests see of sni-router: `service.use<SniRouterApi>('sni-router')`. */

/** Why a session was refused, as its rejection reason (`closeDetail`, metrics' `reason` label). */
export type SniRefusal = 'not-tls' | 'tls-malformed' | 'tls-too-large' | 'no-route';

/** What the router counted since start. */
export interface SniRouterStats {
  /** ClientHellos read whole (routed or not). */
  hellos: number;
  /** Of those, hellos without a server name. */
  withoutSni: number;
  /** Sessions sent on, by service (this service's own name when a route names it). */
  routed: Record<string, number>;
  /** Sessions refused, by reason. A client too slow to send its hello is the core's `peekTimeouts`. */
  refused: Record<SniRefusal, number>;
}

export interface SniRouterApi {
  readonly stats: Readonly<SniRouterStats>;
  /** The service a ClientHello with this name and protocols would go to; undefined: refused. */
  match(sni: string | undefined, alpn?: readonly string[]): string | undefined;
}
