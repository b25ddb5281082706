import { durationSchema, type JsonSchema } from '../../plugin-sdk/index.js';

/** TCP keep-alive settings of one side (client or upstream). */
export interface SideKeepAlive {
  enabled: boolean;
  /** ms of idleness before the first probe (TCP_KEEPIDLE); 0 keeps every kernel default. */
  initial_delay: number;
}

/** Options after validation: every duration in ms, 0 = off. */
export interface KeepAliveOptions {
  client: SideKeepAlive;
  upstream: SideKeepAlive;
  client_idle_timeout: number;
  upstream_idle_timeout: number;
  client_fin_timeout: number;
  upstream_fin_timeout: number;
}

const duration = (def: string | number, description: string): JsonSchema =>
  durationSchema(description, { default: def });

const side = (who: string): JsonSchema => ({
  type: 'object',
  description: `TCP keep-alive on the ${who} socket.`,
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true, description: `Set SO_KEEPALIVE on the ${who} socket.` },
    initial_delay: duration(
      '60s',
      'Idle time before the first probe (TCP_KEEPIDLE), whole seconds, at least 1s. Node then also ' +
        'fixes the probe interval to 1s and the probe count to 10. 0 keeps the kernel defaults ' +
        '(net.ipv4.tcp_keepalive_time/intvl/probes).',
    ),
  },
});

export const keepAliveSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    client: side('client'),
    upstream: side('upstream'),
    client_idle_timeout: duration(
      0,
      'Close the session when nothing was received from the client for this long (HAProxy ' +
        '`timeout client`, read side only). 0 = off.',
    ),
    upstream_idle_timeout: duration(
      0,
      'Close the session when nothing was received from the backend for this long (HAProxy ' +
        '`timeout server`, read side only). 0 = off.',
    ),
    client_fin_timeout: duration(
      '30s',
      'Once the backend has finished (FIN), the time the client may stay silent without finishing ' +
        'too (HAProxy `timeout client-fin`). 0 = fall back to client_idle_timeout.',
    ),
    upstream_fin_timeout: duration(
      '30s',
      'Once the client has finished (FIN), the time the backend may stay silent without finishing ' +
        'too (HAProxy `timeout server-fin`). 0 = fall back to upstream_idle_timeout.',
    ),
  },
};

/** Node truncates the delay to whole seconds and 0 s means "leave the kernel default". */
export function checkDelay(where: string, ms: number): void {
  if (ms > 0 && ms < 1000)
    throw new Error(
      `${where}.initial_delay must be 0 or at least 1s: Node sets TCP_KEEPIDLE in whole seconds`,
    );
}
