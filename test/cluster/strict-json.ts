/**
 * Keys that appear twice in one object of a JSON text, at any depth (`JSON.parse` keeps the
 * last one silently; a strict parser, or a log pipeline that indexes fields, rejects or loses
 * one). For log lines: pino writes a binding and a field of the same name both.
 */
export function duplicateKeys(text: string): string[] {
  const found: string[] = [];
  // One entry per open object (its keys so far) or array (null).
  const open: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const keys = open[open.length - 1];
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) found.push(key);
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      open.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      open.push(null);
    } else if (c === '}' || c === ']') {
      open.pop();
    } else if (c === ',') {
      expectKey = open[open.length - 1] instanceof Set;
    }
  }
  return found;
}
