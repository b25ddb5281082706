import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { durationSchema, type JsonSchema, type OptionIssue } from '../../plugin-sdk/index.js';

/** Options as they arrive in `apply` (durations in ms). */
export interface EtcdRegistryOptions {
  endpoints: string[];
  prefix: string;
  services?: string[];
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  key?: string;
  request_timeout: number;
  apply_timeout: number;
  resync_after: number;
}

export const schema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    endpoints: {
      type: 'array',
      minItems: 1,
      maxItems: 16,
      items: { type: 'string', pattern: '^https?://[^/\\s]+/?$' },
      default: ['http://127.0.0.1:2379'],
      description:
        'etcd client URLs (http:// or https://), e.g. ["http://10.0.0.5:2379"]. One is enough; each is tried.',
    },
    prefix: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      pattern: '^[^\\s]*/$',
      default: '/switchyard/',
      description: 'Key prefix; backends live under <prefix><service>/backends/<address>. Ends with "/".',
    },
    services: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      description: 'Services whose backends live in etcd. Default: every service.',
    },
    username: { type: 'string', minLength: 1, description: 'etcd user (with password).' },
    password: { type: 'string', minLength: 1, description: 'etcd password (with username).' },
    ca: { type: 'string', minLength: 1, description: 'CA bundle file to verify etcd (https endpoints).' },
    cert: { type: 'string', minLength: 1, description: 'Client certificate file (mTLS to etcd, with key).' },
    key: { type: 'string', minLength: 1, description: 'Client key file (with cert).' },
    request_timeout: durationSchema('Time allowed for one etcd request (reads, admin writes).', {
      default: '3s',
      minimum: 1,
    }),
    apply_timeout: durationSchema(
      "Time an admin change waits for this instance's own watch to apply it (read-your-writes).",
      { default: '5s', minimum: 1 },
    ),
    resync_after: durationSchema(
      'A disconnect longer than this ends in a full re-read of the prefix instead of resuming the watch.',
      { default: '5m', minimum: 1 },
    ),
  },
};

export interface EtcdSettings {
  endpoints: string[];
  prefix: string;
  services: string[] | null;
  auth: { username: string; password: string } | undefined;
  credentials: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer } | undefined;
  requestTimeout: number;
  applyTimeout: number;
  resyncAfter: number;
}

/** What the schema cannot say (the plugin's `check`: reported at the key, with file:line:col). */
export function checkOptions(options: EtcdRegistryOptions): OptionIssue[] {
  const issues: OptionIssue[] = [];
  if ((options.username === undefined) !== (options.password === undefined))
    issues.push({
      path: [options.username === undefined ? 'password' : 'username'],
      message: 'username and password go together',
    });
  if ((options.cert === undefined) !== (options.key === undefined))
    issues.push({ path: [options.cert === undefined ? 'key' : 'cert'], message: 'cert and key go together' });
  const https = options.endpoints.some((e) => e.startsWith('https://'));
  if (!https && (options.ca ?? options.cert) !== undefined)
    issues.push({
      path: [options.ca === undefined ? 'cert' : 'ca'],
      message: 'ca, cert and key need https:// endpoints',
    });
  if (https && options.endpoints.some((e) => e.startsWith('http://')))
    issues.push({ path: ['endpoints'], message: 'endpoints mix http:// and https://' });
  return issues;
}

/** Reads the TLS files and derives the settings; throws a message naming the option. */
export function resolveSettings(options: EtcdRegistryOptions, serviceNames: readonly string[]): EtcdSettings {
  const problem = checkOptions(options)[0];
  if (problem !== undefined) throw new Error(`etcd-registry: ${problem.path.join('.')}: ${problem.message}`);
  const https = options.endpoints.some((e) => e.startsWith('https://'));
  for (const name of options.services ?? [])
    if (!serviceNames.includes(name))
      throw new Error(`etcd-registry: services: no service "${name}" (services: ${serviceNames.join(', ')})`);
  for (const name of options.services ?? serviceNames)
    if (name.includes('/')) throw new Error(`etcd-registry: service name "${name}" cannot contain "/"`);
  const read = (what: string, path: string | undefined) => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`etcd-registry: ${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code}`);
    }
  };
  let credentials: EtcdSettings['credentials'];
  if (https) {
    // grpc-js wants a root certificate; without `ca`, Node's bundled CAs.
    const ca = read('ca', options.ca);
    credentials = {
      rootCertificate: ca ?? Buffer.from(rootCertificates.join('\n')),
      ...(options.key === undefined ? {} : { privateKey: read('key', options.key)! }),
      ...(options.cert === undefined ? {} : { certChain: read('cert', options.cert)! }),
    };
  }
  return {
    endpoints: options.endpoints.map((e) => e.replace(/\/$/, '')),
    prefix: options.prefix,
    services: options.services ?? null,
    auth:
      options.username === undefined
        ? undefined
        : { username: options.username, password: options.password! },
    credentials,
    requestTimeout: options.request_timeout,
    applyTimeout: options.apply_timeout,
    resyncAfter: options.resync_after,
  };
}
