/**
 * IP addresses as 16 bytes: IPv6 as is, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), so one
 * representation serves matching, grouping and the PROXY protocol's binary form. Parsing is
 * strict (no leading zeros in IPv4 parts, as the PROXY protocol demands; no zone on input
 * except a `%zone` suffix, which is ignored) and allocation-free when given a buffer.
 */

/** Bytes of an IPv4 address in its mapped IPv6 form: `::ffff:` then the 4 bytes. */
const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] as const;

/** True when the 16 bytes hold an IPv4 address (`::ffff:a.b.c.d`). */
export function isIpv4(bytes: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) if (bytes[i] !== MAPPED_PREFIX[i]) return false;
  return true;
}

/** Parses dotted-quad IPv4 into `out[at..at+4)`; false when `text[start, end)` is not one. */
function parseV4(text: string, start: number, end: number, out: Uint8Array, at: number): boolean {
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = start; i <= end; i++) {
    const c = i === end ? 46 : text.charCodeAt(i); // a virtual '.' ends the last part
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      out[at + part] = value;
      part++;
      digits = 0;
      value = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false; // leading zero
      value = value * 10 + (c - 48);
      if (value > 255 || ++digits > 3) return false;
    } else return false;
  }
  return part === 4;
}

// Scratch space of parseV6 (synchronous, so shared): its groups and an IPv4 tail.
const groups = new Uint16Array(9);
const v4 = new Uint8Array(4);

/** Parses IPv6 (with `::`, an embedded IPv4 tail, an ignored `%zone`) into `out`. */
function parseV6(text: string, out: Uint8Array): boolean {
  let end = text.indexOf('%');
  if (end < 0) end = text.length;
  if (end < 2 || end > 45) return false;
  let count = 0;
  let gap = -1; // index in `groups` where `::` stands
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
    if (i === end) {
      out.fill(0);
      return true;
    }
  }
  while (i < end) {
    // One group: hex digits up to ':' or the end, or an IPv4 tail.
    let j = i;
    let value = 0;
    while (j < end) {
      const c = text.charCodeAt(j);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      value = value * 16 + d;
      j++;
    }
    if (j < end && text.charCodeAt(j) === 46) {
      // IPv4 tail: the last 32 bits.
      if (count > 6 || (gap < 0 && count !== 6)) return false;
      if (!parseV4(text, i, end, v4, 0)) return false;
      groups[count++] = (v4[0]! << 8) | v4[1]!;
      groups[count++] = (v4[2]! << 8) | v4[3]!;
      i = end;
      break;
    }
    if (j === i || j - i > 4) return false;
    if (count === 8) return false;
    groups[count++] = value;
    if (j === end) {
      i = end;
      break;
    }
    if (text.charCodeAt(j) !== 58) return false;
    j++;
    if (j < end && text.charCodeAt(j) === 58) {
      if (gap >= 0) return false; // a second `::`
      gap = count;
      j++;
      if (j === end) {
        i = end;
        break;
      }
    } else if (j === end) return false; // a trailing single ':'
    i = j;
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  out.fill(0);
  const tail = gap < 0 ? 0 : count - gap;
  for (let g = 0; g < count; g++) {
    const slot = gap < 0 || g < gap ? g : 8 - tail + (g - gap);
    out[slot * 2] = groups[g]! >> 8;
    out[slot * 2 + 1] = groups[g]! & 0xff;
  }
  return true;
}

/**
 * The 16-byte form of an IPv4 or IPv6 address, or null when `text` is not one. Pass `out` to
 * reuse a buffer (per-connection code).
 */
export function parseIp(text: string, out: Uint8Array = new Uint8Array(16)): Uint8Array | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) return null;
  if (text.indexOf(':') < 0) {
    for (let i = 0; i < 12; i++) out[i] = MAPPED_PREFIX[i]!;
    return parseV4(text, 0, text.length, out, 12) ? out : null;
  }
  return parseV6(text, out) ? out : null;
}

/** Text of a 16-byte address: dotted IPv4 for mapped addresses, RFC 5952 IPv6 otherwise. */
export function formatIp(bytes: Uint8Array): string {
  if (isIpv4(bytes)) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  return formatIpv6(bytes);
}

/** RFC 5952 text of 16 bytes as IPv6 (hex only, longest zero run of 2+ groups as `::`). */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let g = 0; g < 8; g++) groups.push((bytes[g * 2]! << 8) | bytes[g * 2 + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let g = 0; g < 8; ) {
    if (groups[g] !== 0) {
      g++;
      continue;
    }
    let e = g;
    while (e < 8 && groups[e] === 0) e++;
    if (e - g > bestLength) {
      bestStart = g;
      bestLength = e - g;
    }
    g = e;
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((n) => n.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}
