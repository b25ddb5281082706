import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import type { Backend } from '../../plugin-sdk/index.js';
import type { CheckSettings } from './options.js';

/** Where and how one backend is checked; built when the backend is added. */
export interface ProbeTarget {
  host: string;
  port: number;
  /** TLS options for a handshake check, or null for plain TCP. */
  tls: ConnectionOptions | null;
  /** Set when the TLS material could not be read: every check fails with it. */
  error: string | null;
}

/**
 * Reads the backend spec fields shared with the tls-upstream plugin: `servername`, `ca`,
 * `cert`, `key` (file paths relative to `baseDir`, or inline PEM) and `insecure_skip_verify`.
 */
export function probeTarget(backend: Backend, settings: CheckSettings, baseDir: string): ProbeTarget {
  const spec = backend.spec;
  const port = settings.port ?? backend.port;
  const useTls = settings.tls === 'on' || (settings.tls === 'auto' && spec.tls === true);
  if (!useTls) return { host: backend.host, port, tls: null, error: null };
  const tls: ConnectionOptions = { rejectUnauthorized: spec.insecure_skip_verify !== true };
  const servername = typeof spec.servername === 'string' ? spec.servername : undefined;
  // SNI may not carry an IP address (RFC 6066); certificate checks then use the host itself.
  if (servername !== undefined) tls.servername = servername;
  else if (isIP(backend.host) === 0) tls.servername = backend.host;
  try {
    for (const field of ['ca', 'cert', 'key'] as const) {
      const value = spec[field];
      if (typeof value === 'string') tls[field] = pem(value, baseDir);
    }
  } catch (err) {
    return { host: backend.host, port, tls, error: `tls config: ${(err as Error).message}` };
  }
  return { host: backend.host, port, tls, error: null };
}

function pem(value: string, baseDir: string): string {
  if (value.includes('-----BEGIN')) return value;
  return readFileSync(isAbsolute(value) ? value : resolve(baseDir, value), 'utf8');
}
