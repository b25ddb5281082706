import type { Session } from '../../plugin-sdk/index.js';
import { hashString, withInt } from './hash.js';

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

/** The session's key hash (no allocation beyond the mapped-IPv4 case). */
export function keyHash(session: Session, key: KeySource): number {
  const h = hashString(clientIp(session));
  return key === 'source' ? withInt(h, session.remotePort ?? 0) : h;
}
