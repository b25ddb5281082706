/**
 * Server names as routes compare them: lower-case, without the trailing dot of a fully
 * qualified name (`API.Example.com.` and `api.example.com` are one name).
 */

const MAX_NAME = 253;
const MAX_LABEL = 63;

/**
 * The canonical form of a host name, or undefined when it is not one: labels of 1-63 letters,
 * digits, `-` or `_` (seen in the wild), 253 characters at most without the trailing dot.
 * Anything else (spaces, control or non-ASCII bytes, empty labels) is refused, so a name that
 * reaches logs and routes is always plain.
 */
export function normalizeServerName(raw: string): string | undefined {
  let name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  if (name.length === 0 || name.length > MAX_NAME) return undefined;
  let label = 0;
  let lower = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      if (label === 0) return undefined;
      label = 0;
      continue;
    }
    if (c >= 0x41 && c <= 0x5a) lower = false;
    else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f))
      return undefined;
    if (++label > MAX_LABEL) return undefined;
  }
  if (label === 0) return undefined;
  if (!lower) name = name.toLowerCase();
  return name;
}

/** A route key: an exact name, or `*.` and a suffix (the wildcard stands for one label). */
export type NamePattern = { exact: string } | { wildcard: string };

/** Parses a route key as written in the config; a string is the problem with it. */
export function parseNamePattern(key: string): NamePattern | string {
  if (key.startsWith('*.')) {
    const suffix = normalizeServerName(key.slice(2));
    if (suffix === undefined) return `"${key}" is not a valid wildcard: "*." then a host name`;
    return { wildcard: suffix };
  }
  if (key.includes('*'))
    return `"${key}": a wildcard must be the whole first label ("*.example.com"), matching exactly one label`;
  const exact = normalizeServerName(key);
  if (exact === undefined)
    return `"${key}" is not a valid host name (labels of letters, digits, "-" or "_", 253 characters at most)`;
  return { exact };
}

/** The suffix a one-label wildcard of `name` would be keyed by (`a.b.c` → `b.c`), or undefined. */
export function wildcardSuffix(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot > 0 && dot < name.length - 1 ? name.slice(dot + 1) : undefined;
}
