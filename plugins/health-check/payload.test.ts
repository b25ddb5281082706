import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../testing/index.js';
import { type HealthCheckOptions, resolveSettings } from './options.js';
import { bytesMatcher, parseEscapes, parseHex, preview, regexMatcher } from './payload.js';

const base: HealthCheckOptions = {
  interval: 2000,
  jitter: 10,
  rise: 2,
  fall: 3,
  initial: 'up',
  tls: 'auto',
  on_marked_down: 'keep',
  when_all_down: 'refuse',
};

describe('payload decoding', () => {
  it('decodes \\r \\n \\t \\0 \\\\ and \\xHH, keeps UTF-8 text', () => {
    expect(parseEscapes('PING\\r\\n')).toEqual(Buffer.from('PING\r\n'));
    expect(parseEscapes('a\\tb\\0c\\\\d\\x41\\xff')).toEqual(
      Buffer.from([0x61, 9, 0x62, 0, 0x63, 0x5c, 0x64, 0x41, 0xff]),
    );
    expect(parseEscapes('héllo ✓')).toEqual(Buffer.from('héllo ✓', 'utf8'));
    // YAML double quotes decode escapes already: real CR/LF pass through unchanged.
    expect(parseEscapes('PING\r\n')).toEqual(Buffer.from('PING\r\n'));
  });

  it('rejects unknown escapes and a trailing backslash', () => {
    expect(() => parseEscapes('a\\q')).toThrow(/unknown escape "\\q"/);
    expect(() => parseEscapes('a\\x4')).toThrow(/unknown escape/);
    expect(() => parseEscapes('a\\')).toThrow(/lone backslash/);
  });

  it('parses hex with optional spaces', () => {
    expect(parseHex('2a310d0a')).toEqual(Buffer.from('*1\r\n'));
    expect(parseHex('2A 31 0d 0A')).toEqual(Buffer.from('*1\r\n'));
    expect(() => parseHex('2a3')).toThrow(/not hex/);
  });

  it('matches bytes anywhere in the reply, and regexes on its text', () => {
    const m = bytesMatcher(Buffer.from('+PONG'));
    expect(m.matches(Buffer.from('+PONG\r\n'))).toBe(true);
    expect(m.matches(Buffer.from('junk +PONG'))).toBe(true);
    expect(m.matches(Buffer.from('+PON'))).toBe(false);
    const r = regexMatcher('^\\+PONG\\r\\n$');
    expect(r.matches(Buffer.from('+PONG\r\n'))).toBe(true);
    expect(r.matches(Buffer.from('x+PONG\r\n'))).toBe(false);
    expect(r.description).toBe('/^\\+PONG\\r\\n$/');
    expect(() => regexMatcher('([')).toThrow(/expect_regex/);
  });

  it('previews replies escaped and cut', () => {
    expect(preview(Buffer.from('-ERR\r\n'))).toBe('"-ERR\\r\\n"');
    expect(preview(Buffer.alloc(100, 0x61), 4)).toBe('"aaaa"...');
  });
});

describe('options', () => {
  it('refuses two payloads or two expectations at once', () => {
    expect(() => resolveSettings({ ...base, send: 'a', send_hex: '61' })).toThrow(/send and send_hex/);
    expect(() => resolveSettings({ ...base, expect: 'a', expect_regex: 'a' })).toThrow(/only one of expect/);
    expect(() => resolveSettings({ ...base, interval: 0 })).toThrow(/interval/);
    expect(() => resolveSettings({ ...base, timeout: 0 })).toThrow(/timeout/);
  });

  it('validates through the config loader: durations, defaults, unknown keys, hex', async () => {
    const config = await loadConfig(`
listen: 127.0.0.1:0
backends: [{ address: 127.0.0.1:9 }]
plugins:
  health-check:
    interval: 1.5s
    fast_interval: 200ms
    send: 'PING\\r\\n'
    expect: +PONG
`);
    const use = config.services[0]!.plugins.find((p) => p.name === 'health-check')!;
    expect(use.options).toMatchObject({
      interval: 1500,
      fast_interval: 200,
      jitter: 10,
      rise: 2,
      fall: 3,
      initial: 'up',
      tls: 'auto',
      on_marked_down: 'keep',
      when_all_down: 'refuse',
    });
    expect(resolveSettings(use.options as never).send).toEqual(Buffer.from('PING\r\n'));

    await expect(
      loadConfig(`
listen: 127.0.0.1:0
plugins:
  health-check:
    intervall: 2s
    send_hex: "zz"
    when_all_down: maybe
`),
    ).rejects.toThrow(/intervall[\s\S]*send_hex|send_hex[\s\S]*intervall/);
  });
});
