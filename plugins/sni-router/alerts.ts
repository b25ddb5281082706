import type { SniRefusal } from './api.js';

/**
 * Fatal TLS alerts (RFC 8446 §6) sent before a refused connection is closed, so the client
 * says why instead of "unexpected EOF". Built once per record version: a refusal allocates
 * nothing. Clients that did not send a TLS record get none.
 */

const LEVEL_FATAL = 2;
/** The name matches no route and there is no default. */
const UNRECOGNIZED_NAME = 112;
/** The ClientHello breaks the format. */
const DECODE_ERROR = 50;
/** The ClientHello is larger than this proxy accepts: a local policy, not a format error. */
const HANDSHAKE_FAILURE = 40;

const DESCRIPTION: Record<SniRefusal, number | null> = {
  'not-tls': null,
  'tls-malformed': DECODE_ERROR,
  'tls-too-large': HANDSHAKE_FAILURE,
  'no-route': UNRECOGNIZED_NAME,
};

/** [minor version 0..3] → reason → record. */
const ALERTS: ReadonlyArray<Record<SniRefusal, Buffer | null>> = [0, 1, 2, 3].map((minor) => {
  const out = {} as Record<SniRefusal, Buffer | null>;
  for (const [reason, description] of Object.entries(DESCRIPTION) as Array<[SniRefusal, number | null]>)
    out[reason] = description === null ? null : Buffer.from([21, 3, minor, 0, 2, LEVEL_FATAL, description]);
  return out;
});

/**
 * The alert for a refusal, in the record version the client used (TLS 1.3 clients use 3,
 * as their records say 1.2). Versions above 3 are answered as 3.
 */
export function alertFor(reason: SniRefusal, recordMinor: number): Buffer | null {
  const minor = recordMinor >= 0 && recordMinor <= 3 ? recordMinor : 3;
  return ALERTS[minor]![reason];
}
