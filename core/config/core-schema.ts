import { durationSchema } from '../duration.js';

/** JSON Schema pieces of the core config. Plugins' option schemas are composed in at load time. */

const duration = (def: string, description: string) => durationSchema(description, { default: def });

export const backendSchema = {
  type: 'object',
  description: 'One upstream server.',
  required: ['address'],
  additionalProperties: false,
  properties: {
    address: {
      type: 'string',
      description: '"host:port"; IPv6 as "[::1]:9001".',
      minLength: 3,
      maxLength: 300,
    },
    weight: {
      type: 'integer',
      minimum: 1,
      maximum: 256,
      default: 1,
      description: 'Relative share of new sessions.',
    },
    tls: { type: 'boolean', default: false, description: 'Dial over TLS (tls-upstream plugin).' },
    insecure_skip_verify: {
      type: 'boolean',
      default: false,
      description: 'Do not verify the backend certificate (tls-upstream plugin).',
    },
    ca: {
      type: 'string',
      description: 'CA bundle file to verify the backend certificate (tls-upstream plugin).',
    },
    servername: { type: 'string', description: 'SNI name sent to the backend (tls-upstream plugin).' },
    cert: {
      type: 'string',
      description: 'Client certificate file for mTLS to the backend (tls-upstream plugin).',
    },
    key: { type: 'string', description: 'Client key file for mTLS to the backend (tls-upstream plugin).' },
  },
} as const;

/** Keys of one service; the root accepts them directly (single service) or under `services.<name>`. */
export const serviceProperties = {
  listen: {
    description:
      'Listener address "host:port" (IPv6 as "[::]:8080"), or a list of them. Under "services:" a service without it is a pool: backends, balancer and resilience plugins that a router (sni-router) sends sessions to.',
    anyOf: [
      { type: 'string', minLength: 2 },
      { type: 'array', minItems: 1, items: { type: 'string', minLength: 2 } },
    ],
  },
  backends: {
    type: 'array',
    description: 'Upstream servers. May be empty when backends are added at run time.',
    items: backendSchema,
    default: [],
  },
  connect_timeout: duration('5s', 'Time allowed for one connect attempt (0 = OS default).'),
  idle_timeout: duration('1h', 'Close a session after this long without a byte either way (0 = never).'),
  retries: {
    type: 'integer',
    minimum: 0,
    maximum: 10,
    default: 3,
    description: 'Connect attempts after the first, each on another backend when one is left.',
  },
  drain_timeout: duration(
    '30s',
    'How long sessions may finish on graceful stop or after their backend is removed, before they are closed.',
  ),
  tcp_nodelay: {
    type: 'boolean',
    default: true,
    description:
      'Disable Nagle on client and upstream sockets so small writes leave at once (as HAProxy does). false saves two setsockopt calls per session for bulk-only traffic.',
  },
  max_connections: {
    type: 'integer',
    minimum: 0,
    default: 0,
    description: 'Concurrent client connections per listener; more are closed at accept (0 = no limit).',
  },
} as const;

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const processProperties = {
  $schema: { type: 'string', description: 'Editor hint; ignored.' },
  log_level: { type: 'string', enum: logLevels, description: 'Overrides the default log level (info).' },
  workers: {
    description:
      'Processes that accept and proxy connections: 1 (one process, the default), an integer up to 64, or "auto" (one per CPU). More than 1 runs a cluster primary (control plane: admin API, metrics, backend registry) and that many workers sharing the listeners; see docs/multi-process.md.',
    anyOf: [
      { type: 'integer', minimum: 1, maximum: 64 },
      { type: 'string', const: 'auto' },
    ],
    default: 1,
  },
  scheduling: {
    type: 'string',
    enum: ['auto', 'reuseport', 'rr', 'none'],
    default: 'auto',
    description:
      'How connections reach workers (workers > 1): "reuseport" each worker accepts on its own SO_REUSEPORT sockets and the kernel spreads connections (Node >= 22.12 on Linux); "rr" the primary accepts and hands them round-robin (even spread, a full worker is skipped); "none" workers accept on one shared socket (uneven spread); "auto" (default) reuseport where available, else rr.',
  },
  plugin_timeout: duration(
    '30s',
    'How long a plugin may take to load its module, to apply, and to start (each of its start hooks). Past it the start, `switchyard validate` or the reload fails naming the plugin, instead of waiting forever.',
  ),
  stop_grace: duration(
    '10s',
    "How long a stop may take past drain_timeout (plugins' stop hooks, the last log lines) before the process exits anyway, cutting what is left: HAProxy's hard-stop-after is drain_timeout + stop_grace. A cluster primary kills workers still running then.",
  ),
  worker_semi_space: {
    type: 'integer',
    minimum: 0,
    maximum: 256,
    default: 2,
    description:
      "Workers' V8 young-generation semi-space cap in MiB (node --max-semi-space-size), workers > 1 only. Default 2: measured, it keeps each worker ~55 MiB smaller after a burst of connections than Node's own cap (16 MiB, grown under load), at no CPU cost this machine could see; 0 leaves Node's default. See docs/os-tuning.md.",
  },
} as const;
