import { durationSchema, type JsonSchema, LISTENER_RESERVE } from '../../plugin-sdk/index.js';

/** Options of the admin-api plugin, after defaults. */
export interface AdminApiOptions {
  /** `host:port` of the HTTP server; port 0 picks a free port. */
  listen: string;
  /** Bearer token; falls back to `SWITCHYARD_ADMIN_TOKEN`. Mandatory unless `listen` is loopback. */
  token?: string;
  /** With a token set, GET/HEAD calls need no token (mutating calls always do). */
  read_only_open: boolean;
  /** File that keeps API changes across restarts (see README: "State file"). */
  state_file?: string;
  /** Largest request body accepted, in bytes. */
  body_limit: number;
  /** Host names (besides IP addresses, localhost and the listen host) the API answers to. */
  allowed_hosts: string[];
  /** Connections held at once; more are closed at accept and counted. */
  max_connections: number;
  /** A connection with no traffic either way for this long is closed (ms); also the keep-alive wait. */
  idle_timeout: number;
  /** A request's line and headers must arrive within this (ms), or 408. */
  header_timeout: number;
  /** A whole request, body included, must arrive within this (ms), or 408. */
  request_timeout: number;
}

const duration = (description: string, fallback: string) =>
  durationSchema(description, { default: fallback });

export const DEFAULT_LISTEN = '127.0.0.1:9090';

/** The environment variable read when the `token` option is not set. */
export const TOKEN_ENV = 'SWITCHYARD_ADMIN_TOKEN';

export const optionsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: {
      type: 'string',
      minLength: 2,
      default: DEFAULT_LISTEN,
      description: 'host:port of the admin HTTP server (IPv6 as "[::1]:9090"; port 0 = any free port).',
    },
    token: {
      type: 'string',
      minLength: 1,
      description: `Bearer token for mutating calls (default: env ${TOKEN_ENV}). Mandatory on a non-loopback listen address.`,
    },
    read_only_open: {
      type: 'boolean',
      default: true,
      description: 'With a token set, let GET/HEAD calls through without it.',
    },
    state_file: {
      type: 'string',
      minLength: 1,
      description:
        'JSON file recording the backend lists changed through the API; re-applied on start (relative to the working directory).',
    },
    body_limit: {
      type: 'integer',
      minimum: 256,
      maximum: 1048576,
      default: 16384,
      description: 'Largest request body accepted, in bytes.',
    },
    allowed_hosts: {
      type: 'array',
      maxItems: 100,
      uniqueItems: true,
      default: [],
      items: {
        type: 'string',
        pattern: '^\\.?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\\.?$',
        description: 'a host name ("admin.example.com"), or ".example.com" for it and every subdomain',
      },
      description:
        'Host names the API answers to besides IP addresses, localhost and the listen host (Host header check against DNS rebinding).',
    },
    max_connections: {
      type: 'integer',
      minimum: 1,
      maximum: LISTENER_RESERVE,
      default: 64,
      description: `Connections the API holds at once; more are closed at accept and counted. Plugin listeners share ${LISTENER_RESERVE} descriptors in total.`,
    },
    idle_timeout: duration(
      'Close a connection with no traffic for this long (1s to 1h); also the keep-alive wait.',
      '30s',
    ),
    header_timeout: duration(
      "A request's line and headers must arrive within this (1s to 5m), else 408.",
      '10s',
    ),
    request_timeout: duration(
      'A whole request, body included, must arrive within this (1s to 1h, at least header_timeout), else 408.',
      '30s',
    ),
  },
};
