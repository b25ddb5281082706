import { SwitchyardError } from '../errors.js';

/** One problem found in a config file, with where it is. */
export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the problem has no position (e.g. the file cannot be read). */
  line: number;
  col: number;
  /** Path in the config, e.g. `backends[0].weight`; empty for the document itself. */
  path: string;
  message: string;
}

/** Every problem of a config at once. The CLI prints `issues` and exits with code 2. */
export class ConfigError extends SwitchyardError {
  declare readonly code: 'SWITCHYARD_E_CONFIG';

  constructor(readonly issues: ConfigIssue[]) {
    super('SWITCHYARD_E_CONFIG', issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : issue.file;
  return `${where}  ${issue.path || '(root)'}  ${issue.message}`;
}

/** `['backends', 0, 'weight']` → `backends[0].weight`. */
export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}
