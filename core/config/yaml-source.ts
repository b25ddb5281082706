import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isScalar,
  LineCounter,
  type Node,
  parseDocument,
  parse as parseYaml,
  visit,
} from 'yaml';
import type { ConfigIssue } from './errors.js';
import { formatPath } from './errors.js';

/** yaml's default: enough for anchors shared across a config, far from an expansion attack. */
export const MAX_ALIAS_COUNT = 100;

function holdsAlias(node: Node): boolean {
  let found = false;
  visit(node, {
    Alias: () => {
      found = true;
      return visit.BREAK;
    },
  });
  return found || isAlias(node);
}

/** A parsed YAML config that can say where any path is in its text. */
export class YamlSource {
  readonly lines = new LineCounter();
  readonly doc: Document;
  readonly issues: ConfigIssue[] = [];

  constructor(
    readonly file: string,
    text: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const e of [...this.doc.errors, ...this.doc.warnings]) {
      const pos = this.lines.linePos(e.pos[0]);
      this.issues.push({ file, line: pos.line, col: pos.col, path: '', message: e.message.split('\n')[0]! });
    }
    if (this.doc.errors.length === 0) this.#substituteEnv(env);
  }

  /**
   * The document as plain data; undefined, with an issue at the first alias that nests
   * aliases, when aliases would expand past MAX_ALIAS_COUNT ("billion laughs": each level an
   * alias list of the one before, a few lines that expand to gigabytes).
   */
  toJS(): unknown {
    try {
      return this.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      if (!(err instanceof ReferenceError) || !/alias/i.test(err.message)) throw err;
      const alias = this.#firstNestingAlias();
      const pos = this.lines.linePos(alias?.range?.[0] ?? 0);
      this.issues.push({
        file: this.file,
        line: pos.line,
        col: pos.col,
        path: '',
        message: `YAML aliases expand too far${alias ? ` from *${alias.source}` : ''} (aliases of anchors that hold aliases: a "billion laughs" document); at most ${MAX_ALIAS_COUNT} alias expansions are allowed`,
      });
      return undefined;
    }
  }

  /** The first alias whose anchor holds aliases itself, in document order. */
  #firstNestingAlias(): Alias | undefined {
    let found: Alias | undefined;
    visit(this.doc, {
      Alias: (_key, node) => {
        const source = node.resolve(this.doc) as Node | undefined;
        if (source === undefined || !holdsAlias(source)) return;
        found = node;
        return visit.BREAK;
      },
    });
    return found;
  }

  /** Adds an issue located at `path`; `atKey` points at the key of the last segment instead of its value. */
  report(path: ReadonlyArray<string | number>, message: string, atKey = false): void {
    const { line, col } = this.locate(path, atKey);
    this.issues.push({ file: this.file, line, col, path: formatPath(path), message });
  }

  locate(path: ReadonlyArray<string | number>, atKey = false): { line: number; col: number } {
    // Walk down as far as the path exists, so a missing property points at its parent.
    for (let depth = path.length; depth >= 0; depth--) {
      const sub = path.slice(0, depth);
      let offset: number | undefined;
      if (atKey && depth === path.length && depth > 0) {
        const parent = sub.length === 1 ? this.doc.contents : this.doc.getIn(sub.slice(0, -1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === sub[sub.length - 1]);
          if (pair && isScalar(pair.key)) offset = pair.key.range?.[0];
        }
      }
      if (offset === undefined) {
        const node = depth === 0 ? this.doc.contents : this.doc.getIn(sub, true);
        offset = (node as { range?: [number, number, number] } | null)?.range?.[0];
      }
      if (offset !== undefined) return this.lines.linePos(offset);
    }
    return { line: 1, col: 1 };
  }

  /** `${NAME}` and `${NAME:-default}` in values; a missing variable without default is an issue. */
  #substituteEnv(env: NodeJS.ProcessEnv): void {
    visit(this.doc, {
      Scalar: (key, node) => {
        if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
        const original = node.value;
        let missing: string | undefined;
        const replaced = original.replace(
          /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
          (_m, name, def) => {
            const value = env[name];
            if (value !== undefined && value !== '') return value;
            if (def !== undefined) return def;
            missing = name;
            return '';
          },
        );
        if (missing !== undefined) {
          const pos = this.lines.linePos(node.range?.[0] ?? 0);
          this.issues.push({
            file: this.file,
            line: pos.line,
            col: pos.col,
            path: '',
            message: `environment variable ${missing} is not set (write \${${missing}:-default} for a default)`,
          });
          return;
        }
        // A plain scalar that was only a variable takes the YAML type of its value (ports, booleans).
        node.value =
          node.type === 'PLAIN' && /^\$\{[^}]+\}$/.test(original)
            ? (parseYaml(replaced) ?? replaced)
            : replaced;
      },
    });
  }
}
