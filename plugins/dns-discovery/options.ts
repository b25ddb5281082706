import {
  backendFieldsSchema,
  durationSchema,
  type JsonSchema,
  type OptionIssue,
} from '../../plugin-sdk/index.js';

/** Options as they arrive in `apply` (durations in ms). */
export interface DnsDiscoveryOptions {
  name: string;
  port?: number;
  family: 'ipv4' | 'ipv6' | 'both';
  resolvers?: string[];
  refresh: number;
  min_refresh: number;
  max_refresh?: number;
  timeout: number;
  hold_empty: number;
  weight: number;
  backend?: Record<string, unknown>;
}

/** What the lookups and the schedule use, derived once per (re)configuration. */
export interface DnsSettings {
  name: string;
  /** A/AAAA mode with this port; null: SRV. */
  port: number | null;
  family: 'ipv4' | 'ipv6' | 'both';
  resolvers: string[] | null;
  refresh: number;
  minRefresh: number;
  maxRefresh: number;
  timeout: number;
  holdEmpty: number;
  weight: number;
  /** Fields every discovered backend gets (tls, servername, plugins' keys such as proxy_protocol). */
  backend: Record<string, unknown>;
}

/** Tries per query (node:dns `tries`): one retry on a lost UDP packet. */
export const TRIES = 2;

export const schema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: {
      type: 'string',
      minLength: 1,
      maxLength: 253,
      pattern: '^[A-Za-z0-9_.-]+$',
      description:
        'The name to look up: an SRV name (_service._proto.domain: targets, ports and weights), or, with `port`, a host name whose A/AAAA records are the backends.',
    },
    port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'A/AAAA mode: the port of every address. Without it, `name` is looked up as SRV.',
    },
    family: {
      enum: ['ipv4', 'ipv6', 'both'],
      default: 'ipv4',
      description: 'Which address records to ask for (A, AAAA or both), for `name` or for SRV targets.',
    },
    resolvers: {
      type: 'array',
      minItems: 1,
      maxItems: 8,
      items: { type: 'string', minLength: 2, maxLength: 60 },
      description:
        'DNS servers to ask, "ip" or "ip:port" ("[::1]:5353" for IPv6). Default: the system resolvers (/etc/resolv.conf).',
    },
    refresh: durationSchema(
      'Time between lookups when the answer has no usable TTL (SRV answers; see README) and, unless max_refresh says otherwise, the longest time between lookups.',
      { default: '30s', minimum: 1 },
    ),
    min_refresh: durationSchema('Least time between lookups, however short the records’ TTL.', {
      default: '1s',
      minimum: 1,
    }),
    max_refresh: durationSchema('Longest time between lookups, however long the TTL. Default: refresh.', {
      minimum: 1,
    }),
    timeout: durationSchema('Time allowed for one query to one server (2 tries).', {
      default: '2s',
      minimum: 1,
    }),
    hold_empty: durationSchema(
      'How long the last backends are kept once the name answers with no records (NXDOMAIN or no data) before they are removed; 0 removes them at the first empty answer. Lookup errors keep them indefinitely.',
      { default: '30s' },
    ),
    weight: {
      type: 'integer',
      minimum: 1,
      maximum: 256,
      default: 1,
      description: 'A/AAAA mode: the weight of every address (SRV records carry their own).',
    },
    backend: backendFieldsSchema(
      'Fields every discovered backend gets, as a config backend takes them: TLS settings (tls, servername, ca...) and the per-backend keys of the plugins enabled in the service (e.g. proxy_protocol). weight comes from SRV records or the `weight` option.',
      { omit: ['weight'] },
    ),
  },
};

/** What the schema cannot say (the plugin's `check`: reported at the key, with file:line:col). */
export function checkOptions(options: DnsDiscoveryOptions): OptionIssue[] {
  const issues: OptionIssue[] = [];
  const maxRefresh = options.max_refresh ?? Math.max(options.refresh, options.min_refresh);
  if (options.min_refresh > maxRefresh)
    issues.push({
      path: ['min_refresh'],
      message: `min_refresh (${options.min_refresh} ms) is above max_refresh (${maxRefresh} ms)`,
    });
  if (options.port === undefined && options.weight !== 1)
    issues.push({
      path: ['weight'],
      message: 'weight applies to A/AAAA mode (with port); SRV records carry their own weights',
    });
  for (const [i, server] of (options.resolvers ?? []).entries())
    if (!isResolverAddress(server))
      issues.push({
        path: ['resolvers', i],
        message: `"${server}" is not an IP address with an optional port`,
      });
  return issues;
}

/** Derives the settings; throws the first `checkOptions` problem (options given by code, not a file). */
export function resolveSettings(options: DnsDiscoveryOptions): DnsSettings {
  const problem = checkOptions(options)[0];
  if (problem !== undefined) throw new Error(`dns-discovery: ${problem.path.join('.')}: ${problem.message}`);
  const maxRefresh = options.max_refresh ?? Math.max(options.refresh, options.min_refresh);
  return {
    name: options.name.replace(/\.$/, ''),
    port: options.port ?? null,
    family: options.family,
    resolvers: options.resolvers ?? null,
    refresh: options.refresh,
    minRefresh: options.min_refresh,
    maxRefresh,
    timeout: options.timeout,
    holdEmpty: options.hold_empty,
    weight: options.weight,
    backend: options.backend ?? {},
  };
}

/** What node:dns `setServers` accepts: an IP, "ip:port", or "[ipv6]:port". */
function isResolverAddress(text: string): boolean {
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(text);
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(text);
  const bare6 = /^[0-9A-Fa-f:]+$/.test(text) && text.includes(':');
  const port = (v6 ?? v4)?.[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return false;
  if (v4) return v4[1]!.split('.').every((o) => Number(o) <= 255);
  return v6 !== null || bare6;
}
