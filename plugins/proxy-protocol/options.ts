import { cidrListSchema, durationSchema, type JsonSchema, type OptionIssue } from '../../plugin-sdk/index.js';
import type { Version } from './build.js';
import { V1_MAX_LENGTH, V2_FIXED_LENGTH, V2_MAX_ADDRESS_LENGTH } from './parse.js';

/** Options as they arrive in `apply` (durations in ms). */
export interface ProxyProtocolOptions {
  /** Listeners expect a PROXY header (v1 or v2) before anything else. */
  accept: boolean;
  /** Peers allowed to send one; required with `accept`. */
  trusted?: string[];
  /** Listeners (addresses as written in `listen`, or positions) that expect it; default all. */
  listeners?: Array<string | number>;
  /** ms to wait for the whole header. */
  timeout: number;
  /** Longest TLV part of a v2 header. */
  max_tlv_bytes: number;
  /** Send a header to every backend (a backend's `proxy_protocol` overrides). */
  send?: Version;
  /** Health checks of backends that get a header send a LOCAL one first. */
  health_checks: boolean;
}

/** What a backend spec's `proxy_protocol` may say. */
export type BackendSetting = Version | 'none';

export const schema: JsonSchema = {
  type: 'object',
  description:
    'PROXY protocol v1/v2: read the real client from a header sent by a load balancer in front (accept), and tell backends the client (send).',
  additionalProperties: false,
  properties: {
    accept: {
      type: 'boolean',
      default: false,
      description:
        'Every connection to the listeners must start with a PROXY header (v1 or v2) from a `trusted` peer; its address becomes the client.',
    },
    trusted: cidrListSchema(
      'Peers that may send a PROXY header (your load balancers). Required with accept: true.',
      {
        minItems: 1,
      },
    ),
    listeners: {
      type: 'array',
      minItems: 1,
      items: { type: ['string', 'integer'], minLength: 1, minimum: 0 },
      description:
        'Listeners that expect the header: addresses exactly as written in `listen`, or positions (0 = first). Default: all.',
    },
    timeout: durationSchema('Time a connection has to send its whole PROXY header before it is closed.', {
      default: '5s',
      minimum: 1,
    }),
    max_tlv_bytes: {
      type: 'integer',
      minimum: 0,
      maximum: 16_384,
      default: 2048,
      description: 'Longest TLV part (after the addresses) of a v2 header; a longer header is refused.',
    },
    send: {
      type: 'string',
      enum: ['v1', 'v2'],
      description:
        'Send a PROXY header with the real client to every backend; a backend\'s "proxy_protocol" overrides.',
    },
    health_checks: {
      type: 'boolean',
      default: true,
      description:
        "Health checks (health-check plugin) of backends that get a header start with one too: v2 LOCAL, or for v1 a line with the check connection's own addresses.",
    },
  },
};

/** What the schema cannot say: `accept` needs `trusted`. */
export function checkOptions(options: ProxyProtocolOptions): OptionIssue[] {
  if (options.accept && (options.trusted === undefined || options.trusted.length === 0))
    return [
      {
        path: ['accept'],
        message:
          'accept: true needs "trusted": the peers (your load balancers) allowed to send a PROXY header; anyone else could claim any address',
      },
    ];
  return [];
}

export const backendOptions: Record<string, JsonSchema> = {
  proxy_protocol: {
    type: 'string',
    enum: ['v1', 'v2', 'none'],
    description: 'PROXY header to send to this backend, overriding the plugin\'s "send" ("none": no header).',
  },
};

/** Most bytes a valid header of either version can take with these options. */
export function maxHeaderBytes(options: Pick<ProxyProtocolOptions, 'max_tlv_bytes'>): number {
  return Math.max(V1_MAX_LENGTH, V2_FIXED_LENGTH + V2_MAX_ADDRESS_LENGTH + options.max_tlv_bytes);
}

/** Listener positions that expect a header, or null for all. Unknown addresses are errors. */
export function selectListeners(
  wanted: Array<string | number> | undefined,
  listen: string[],
): Set<number> | null {
  if (wanted === undefined) return null;
  const set = new Set<number>();
  for (const w of wanted) {
    if (typeof w === 'number') {
      if (w >= listen.length)
        throw new Error(`listeners: position ${w} is out of range (the service has ${listen.length})`);
      set.add(w);
      continue;
    }
    const i = listen.indexOf(w);
    if (i < 0)
      throw new Error(`listeners: "${w}" is not one of this service's listeners (${listen.join(', ')})`);
    for (let j = i; j < listen.length; j++) if (listen[j] === w) set.add(j);
  }
  return set;
}
