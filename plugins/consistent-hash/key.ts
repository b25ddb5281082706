import type { Session } from '../../plugin-sdk/index.js';
import { hash32, withInt } from './hash.js';

/** What a session is hashed by. */
export type KeySource = 'source_ip' | 'source' | 'sni';

/**
 * The client IP as the key: an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack
 * listener reports) is folded to its IPv4 form, so a client maps alike on every listener.
 * A client gone before `select` has no address; it hashes as '' (its session ends anyway).
 */
export function clientIp(session: Session): string {
  const ip = session.remoteAddress;
  if (ip === undefined) return '';
  return ip.startsWith('::ffff:') && ip.includes('.', 7) ? ip.slice(7) : ip;
}

/**
 * The session's key hash, a signed 32-bit integer (no allocation beyond the mapped-IPv4 case).
 * `sni`: the server name a peek-stage plugin put in `session.tls` (from the ClientHello or a
 * PROXY v2 header); a session without one is hashed by its client IP instead.
 */
export function keyHash(session: Session, key: KeySource): number {
  if (key === 'sni') {
    const sni = session.tls?.sni;
    if (sni !== undefined) return hash32(sni);
  }
  const h = hash32(clientIp(session));
  return key === 'source' ? withInt(h, session.remotePort ?? 0) : h;
}
