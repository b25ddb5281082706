/** Decides whether the reply read so far passes the check. */
export interface ReplyMatcher {
  /** For error messages, e.g. `"+PONG"` or `/^\+PONG/`. */
  readonly description: string;
  matches(reply: Buffer): boolean;
}

const SIMPLE_ESCAPES: Record<string, number> = { r: 13, n: 10, t: 9, '0': 0, '\\': 92 };

/**
 * Decodes `\r \n \t \0 \\ \xHH` as written in the config (single-quoted or plain YAML keeps the
 * backslashes). Text is UTF-8; an unknown escape is an error rather than a silent guess.
 */
export function parseEscapes(text: string): Buffer {
  const parts: Buffer[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '\\') {
      literal += ch;
      continue;
    }
    parts.push(Buffer.from(literal, 'utf8'));
    literal = '';
    const next = text[i + 1];
    if (next === undefined) throw new Error(`"${text}" ends with a lone backslash`);
    if (next in SIMPLE_ESCAPES) {
      parts.push(Buffer.of(SIMPLE_ESCAPES[next]!));
      i++;
    } else if (next === 'x' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 2, i + 4))) {
      parts.push(Buffer.of(Number.parseInt(text.slice(i + 2, i + 4), 16)));
      i += 3;
    } else {
      throw new Error(`"${text}": unknown escape "\\${next}" (use \\r \\n \\t \\0 \\\\ or \\xHH)`);
    }
  }
  parts.push(Buffer.from(literal, 'utf8'));
  return Buffer.concat(parts);
}

/** Hex pairs, spaces allowed between them: `"2a 31 0d 0a"`. */
export function parseHex(hex: string): Buffer {
  const compact = hex.replace(/\s+/g, '');
  if (!/^([0-9A-Fa-f]{2})+$/.test(compact)) throw new Error(`"${hex}" is not hex bytes`);
  return Buffer.from(compact, 'hex');
}

/** The reply contains `needle` somewhere (HAProxy `expect string` / `expect binary`). */
export function bytesMatcher(needle: Buffer): ReplyMatcher {
  return {
    description: preview(needle),
    matches: (reply) => reply.indexOf(needle) >= 0,
  };
}

/** The reply, read as UTF-8, matches `source` (HAProxy `expect rstring`). */
export function regexMatcher(source: string): ReplyMatcher {
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (err) {
    throw new Error(`expect_regex: ${(err as Error).message}`);
  }
  return {
    description: String(re),
    matches: (reply) => re.test(reply.toString('utf8')),
  };
}

/** A short, escaped rendering of bytes for logs: `"-ERR wrong\r\n"`. */
export function preview(bytes: Buffer, max = 64): string {
  const text = JSON.stringify(bytes.subarray(0, max).toString('latin1'));
  return bytes.length > max ? `${text}...` : text;
}
