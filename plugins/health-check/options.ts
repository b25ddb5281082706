import { durationSchema, type JsonSchema } from '../../plugin-sdk/index.js';
import { bytesMatcher, parseEscapes, parseHex, type ReplyMatcher, regexMatcher } from './payload.js';

export type InitialState = 'up' | 'fully-up' | 'down' | 'fully-down';

/** Options as they arrive in `apply` (durations already in ms). */
export interface HealthCheckOptions {
  interval: number;
  timeout?: number;
  fast_interval?: number;
  down_interval?: number;
  jitter: number;
  rise: number;
  fall: number;
  initial: InitialState;
  port?: number;
  tls: 'auto' | 'on' | 'off';
  send?: string;
  send_hex?: string;
  expect?: string;
  expect_hex?: string;
  expect_regex?: string;
  on_marked_down: 'keep' | 'close';
  when_all_down: 'refuse' | 'panic';
}

/** Options resolved once at apply: defaults derived, payloads decoded, regex compiled. */
export interface CheckSettings {
  interval: number;
  fastInterval: number;
  downInterval: number;
  timeout: number;
  /** Percent, 0..50. */
  jitter: number;
  rise: number;
  fall: number;
  initial: InitialState;
  port: number | null;
  tls: 'auto' | 'on' | 'off';
  send: Buffer | null;
  expect: ReplyMatcher | null;
  onMarkedDown: 'keep' | 'close';
  whenAllDown: 'refuse' | 'panic';
}

const duration = (description: string, def?: string) => durationSchema(description, { default: def });

const HEX = '^(\\s*[0-9A-Fa-f]{2})+\\s*$';

export const schema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    interval: duration('Time between checks of a backend that is steadily up (HAProxy inter).', '2s'),
    timeout: duration('Time allowed for a whole check: connect, TLS, send and reply. Default: interval.'),
    fast_interval: duration(
      'Time between checks while a backend is between states (HAProxy fastinter). Default: interval.',
    ),
    down_interval: duration(
      'Time between checks of a backend that is steadily down (HAProxy downinter). Default: interval.',
    ),
    jitter: {
      type: 'number',
      minimum: 0,
      maximum: 50,
      default: 10,
      description: 'Spread each delay randomly by up to this percentage, so checks do not fire together.',
    },
    rise: {
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 2,
      description: 'Consecutive successful checks that mark a down backend up.',
    },
    fall: {
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 3,
      description: 'Consecutive failed checks that mark an up backend down.',
    },
    initial: {
      type: 'string',
      enum: ['up', 'fully-up', 'down', 'fully-down'],
      default: 'up',
      description:
        'State of a new backend (HAProxy init-state): up/down are decided by the first check, fully-up/fully-down need fall/rise checks.',
    },
    port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: "Check this port instead of the backend's own.",
    },
    tls: {
      type: 'string',
      enum: ['auto', 'on', 'off'],
      default: 'auto',
      description: 'Check over TLS: auto = when the backend has `tls: true`.',
    },
    send: {
      type: 'string',
      minLength: 1,
      description: 'Text to send once connected; \\r \\n \\t \\0 \\\\ and \\xHH escapes are decoded.',
    },
    send_hex: { type: 'string', pattern: HEX, description: 'Bytes to send, as hex ("2a310d0a").' },
    expect: {
      type: 'string',
      minLength: 1,
      description: 'The reply must contain this text (escapes as in `send`).',
    },
    expect_hex: { type: 'string', pattern: HEX, description: 'The reply must contain these bytes (hex).' },
    expect_regex: {
      type: 'string',
      minLength: 1,
      description: 'The reply (as UTF-8 text) must match this regular expression.',
    },
    on_marked_down: {
      type: 'string',
      enum: ['keep', 'close'],
      default: 'keep',
      description:
        'What happens to sessions of a backend marked down: keep them, or close them (HAProxy on-marked-down shutdown-sessions).',
    },
    when_all_down: {
      type: 'string',
      enum: ['refuse', 'panic'],
      default: 'refuse',
      description:
        'When every backend is down: refuse new sessions, or route to all of them as if healthy (Envoy panic routing).',
    },
  },
};

/** Derives defaults and decodes payloads; throws with a message naming the option on bad input. */
export function resolveSettings(o: HealthCheckOptions): CheckSettings {
  if (o.interval <= 0) throw new Error('health-check interval must be more than 0');
  const fastInterval = o.fast_interval ?? o.interval;
  const downInterval = o.down_interval ?? o.interval;
  const timeout = o.timeout ?? o.interval;
  for (const [name, value] of [
    ['fast_interval', fastInterval],
    ['down_interval', downInterval],
    ['timeout', timeout],
  ] as const)
    if (value <= 0) throw new Error(`health-check ${name} must be more than 0`);
  if (o.send !== undefined && o.send_hex !== undefined) throw new Error('set only one of send and send_hex');
  const expects = [o.expect, o.expect_hex, o.expect_regex].filter((e) => e !== undefined);
  if (expects.length > 1) throw new Error('set only one of expect, expect_hex and expect_regex');

  let send: Buffer | null = null;
  if (o.send !== undefined) send = parseEscapes(o.send);
  else if (o.send_hex !== undefined) send = parseHex(o.send_hex);

  let expect: ReplyMatcher | null = null;
  if (o.expect !== undefined) expect = bytesMatcher(parseEscapes(o.expect));
  else if (o.expect_hex !== undefined) expect = bytesMatcher(parseHex(o.expect_hex));
  else if (o.expect_regex !== undefined) expect = regexMatcher(o.expect_regex);

  return {
    interval: o.interval,
    fastInterval,
    downInterval,
    timeout,
    jitter: o.jitter,
    rise: o.rise,
    fall: o.fall,
    initial: o.initial,
    port: o.port ?? null,
    tls: o.tls,
    send,
    expect,
    onMarkedDown: o.on_marked_down,
    whenAllDown: o.when_all_down,
  };
}
