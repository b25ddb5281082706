import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { describeFileKind, type OptionIssue } from '../../plugin-sdk/index.js';
import { loadCertificates } from './certificates.js';
import type { TlsListenerOptions } from './index.js';

/**
 * What `switchyard validate` and every start check before anything listens (the plugin's
 * `check`): each certificate, key and CA file exists and is a regular file (reported at its
 * option), `client_auth` has its CA, and then the files load as a start loads them (PEM,
 * the key matches the certificate, OpenSSL accepts the versions and ciphers).
 */
export function checkOptions(options: TlsListenerOptions): OptionIssue[] {
  const issues: OptionIssue[] = [];
  const files: Array<[Array<string | number>, string | undefined, string]> = [
    [['cert'], options.cert, 'certificate'],
    [['key'], options.key, 'key'],
    [['client_ca'], options.client_ca, 'client CA'],
  ];
  for (const [name, pair] of Object.entries(options.sni ?? {}))
    files.push([['sni', name, 'cert'], pair.cert, 'certificate'], [['sni', name, 'key'], pair.key, 'key']);
  for (const [path, file, what] of files) {
    if (file === undefined) continue;
    const problem = fileProblem(file);
    if (problem !== undefined) issues.push({ path, message: `${what} file ${problem}` });
  }
  if (options.client_auth !== 'none' && options.client_ca === undefined)
    issues.push({
      path: ['client_auth'],
      message: `client_auth "${options.client_auth}" needs client_ca (the CA client certificates chain to)`,
    });
  if (issues.length > 0) return issues;
  try {
    loadCertificates(options, { ticketKeys: randomBytes(48), sessionIdContext: 'check' });
  } catch (err) {
    issues.push({ path: [], message: (err as Error).message });
  }
  return issues;
}

/** Why `file` (relative to the working directory) cannot be read as a PEM file, or undefined. */
function fileProblem(file: string): string | undefined {
  const path = resolve(file);
  try {
    const st = statSync(path);
    if (st.isFile()) return undefined;
    return `${path} is ${describeFileKind(st)}`;
  } catch (err) {
    return `${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}
