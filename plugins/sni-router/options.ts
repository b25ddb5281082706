import {
  type CheckContext,
  durationSchema,
  type JsonSchema,
  type OptionIssue,
} from '../../plugin-sdk/index.js';
import { parseNamePattern } from './names.js';

/** A route's target: a service name, or a service with per-protocol exceptions. */
export type RouteTarget = string | { service: string; alpn?: Record<string, string> };

/** Options as they arrive in `apply` (durations in ms). */
export interface SniRouterOptions {
  /** Server name (exact, or `*.` + suffix for one label) → target. */
  routes: Record<string, RouteTarget>;
  /** ALPN protocol → service, whatever the server name; checked before `routes`. */
  alpn?: Record<string, string>;
  /** Where a hello with no route (unknown or missing name) goes; without it, it is refused. */
  default?: string;
  /** ms a client has to send its whole ClientHello. */
  timeout: number;
  /** Most bytes a ClientHello may take, record headers included. */
  max_bytes: number;
}

export const DEFAULT_MAX_BYTES = 16_384;

const serviceName: JsonSchema = { type: 'string', minLength: 1, description: 'A service of this config.' };
/** ALPN protocol ids are 1-255 bytes; printable ASCII covers every registered one (h2, http/1.1, acme-tls/1). */
const protocolNames: JsonSchema = {
  type: 'string',
  minLength: 1,
  maxLength: 255,
  pattern: '^[\\x21-\\x7e]+$',
};
const alpnMap = (description: string): JsonSchema => ({
  type: 'object',
  description,
  minProperties: 1,
  propertyNames: protocolNames,
  additionalProperties: serviceName,
});

export const schema: JsonSchema = {
  type: 'object',
  description:
    'Routes TLS connections by the server name (SNI) and ALPN of their ClientHello to the pools of other services, without terminating TLS.',
  additionalProperties: false,
  properties: {
    routes: {
      type: 'object',
      description:
        'Server name → service. Exact names ("api.example.com") or one-label wildcards ("*.apps.example.com"); case-insensitive, a trailing dot ignored; an exact name wins over a wildcard. The value is a service name, or { service, alpn: { <protocol>: <service> } } to send some protocols elsewhere.',
      default: {},
      propertyNames: { type: 'string', minLength: 1, maxLength: 255 },
      additionalProperties: {
        anyOf: [
          serviceName,
          {
            type: 'object',
            additionalProperties: false,
            required: ['service'],
            properties: {
              service: serviceName,
              alpn: alpnMap(
                'Protocol → service for this name: the first protocol the client offers that is listed here wins; otherwise `service`.',
              ),
            },
          },
        ],
      },
    },
    alpn: alpnMap(
      'Protocol → service, whatever the server name (e.g. "acme-tls/1": acme): checked before routes; the first protocol the client offers that is listed wins.',
    ),
    default: {
      ...serviceName,
      description:
        'Service for a ClientHello no route matches, with an unknown name or none. Without it such connections are refused (TLS alert unrecognized_name).',
    },
    timeout: durationSchema(
      'Time a client has to send its whole ClientHello; then the connection is closed.',
      {
        default: '5s',
        minimum: 1,
      },
    ),
    max_bytes: {
      type: 'integer',
      minimum: 512,
      maximum: 65_536,
      default: DEFAULT_MAX_BYTES,
      description:
        'Largest ClientHello accepted, TLS record headers included; a larger one is refused. The default fits any single-record hello, post-quantum key shares included.',
    },
  },
};

/**
 * What the schema cannot say: names that are not host names or wildcards, two keys for one
 * name, targets that are not services of this config, a router that routes nothing or sits
 * in a service that does not listen.
 */
export function checkOptions(options: SniRouterOptions, context: CheckContext): OptionIssue[] {
  const issues: OptionIssue[] = [];
  const target = (path: Array<string | number>, service: string) => {
    if (!context.services.has(service))
      issues.push({
        path,
        message: `no service named "${service}" (services: ${[...context.services.keys()].join(', ')})`,
      });
  };
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(options.routes)) {
    const pattern = parseNamePattern(key);
    if (typeof pattern === 'string') {
      issues.push({ path: ['routes', key], message: pattern });
    } else {
      const canonical = 'exact' in pattern ? pattern.exact : `*.${pattern.wildcard}`;
      const other = seen.get(canonical);
      if (other !== undefined)
        issues.push({ path: ['routes', key], message: `"${key}" is the same name as "${other}"` });
      else seen.set(canonical, key);
    }
    if (typeof value === 'string') target(['routes', key], value);
    else {
      target(['routes', key, 'service'], value.service);
      for (const [protocol, service] of Object.entries(value.alpn ?? {}))
        target(['routes', key, 'alpn', protocol], service);
    }
  }
  for (const [protocol, service] of Object.entries(options.alpn ?? {})) target(['alpn', protocol], service);
  if (options.default !== undefined) target(['default'], options.default);
  if (Object.keys(options.routes).length === 0 && options.alpn === undefined && options.default === undefined)
    issues.push({ path: [], message: 'nothing to route: give routes, alpn or default' });
  if (context.service !== undefined && context.services.get(context.service)?.listens === false)
    issues.push({
      path: [],
      message: `service "${context.service}" has no listen: a pool never accepts a connection to route; enable sni-router in the service that listens`,
    });
  return issues;
}
