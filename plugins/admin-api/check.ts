import { statSync } from 'node:fs';
import { describeFileKind, type OptionIssue, parseListenAddress } from '../../plugin-sdk/index.js';
import { isLoopbackHost } from './auth.js';
import { type AdminApiOptions, TOKEN_ENV } from './options.js';

/** The shortest of each timeout: shorter ones would cut off ordinary clients, not attackers. */
const MIN_TIMEOUT = 1000;

/**
 * What `switchyard validate` and every start check before anything runs (the plugin's
 * `check`): the listen address, a token where the address is reachable from other hosts
 * (the option or SWITCHYARD_ADMIN_TOKEN in this environment), timeouts, and a state file path
 * that is a regular file if it exists at all.
 */
export function checkOptions(options: AdminApiOptions, env: NodeJS.ProcessEnv = process.env): OptionIssue[] {
  const issues: OptionIssue[] = [];
  const listen = parseListenAddress(options.listen);
  if (typeof listen === 'string') issues.push({ path: ['listen'], message: listen });
  else if (options.token === undefined && !env[TOKEN_ENV] && !isLoopbackHost(listen.host))
    issues.push({
      path: ['listen'],
      message: `${options.listen} is reachable from other hosts, so a token is mandatory: set the "token" option or ${TOKEN_ENV}`,
    });
  for (const key of ['idle_timeout', 'header_timeout', 'request_timeout'] as const)
    if (options[key] < MIN_TIMEOUT) issues.push({ path: [key], message: `must be at least 1s` });
  if (options.state_file !== undefined) {
    const problem = notRegularFile(options.state_file);
    if (problem !== undefined) issues.push({ path: ['state_file'], message: problem });
  }
  return issues;
}

/**
 * Why `path` cannot be a state file: it exists but is not a regular file (a directory, a FIFO
 * that would block the read forever, a device). Undefined when it is a file or does not exist yet.
 */
export function notRegularFile(path: string): string | undefined {
  let kind: string;
  try {
    const st = statSync(path);
    if (st.isFile()) return undefined;
    kind = describeFileKind(st);
  } catch {
    return undefined; // missing (created on the first change) or unreadable (reported at start)
  }
  return `${path} is ${kind}, not a regular file; give the path of a JSON file (it is created if missing)`;
}
