import { describe, expect, it } from 'vitest';
import { backendIdentity, canonicalIPv6, parseAddress } from '../../core/address.js';

/** The identity rules of core/address.ts, spelling by spelling. */
describe('backend identity', () => {
  const identity = (input: string) => {
    const id = backendIdentity(input);
    return 'error' in id ? `error: ${id.error}` : id.address;
  };

  it('normalises host names, IPv6 text and ports; keeps names and addresses apart', () => {
    const cases: Array<[string, string]> = [
      ['Example.COM:80', 'example.com:80'],
      ['example.com.:80', 'example.com:80'],
      ['LOCALHOST:0080', 'localhost:80'],
      ['localhost:80', 'localhost:80'],
      ['127.0.0.1:80', '127.0.0.1:80'],
      ['[::1]:80', '[::1]:80'],
      ['[0:0:0:0:0:0:0:1]:80', '[::1]:80'],
      ['[0000::0001]:80', '[::1]:80'],
      ['[::]:80', '[::]:80'],
      ['[2001:DB8::0:1]:80', '[2001:db8::1]:80'],
      ['[2001:db8:0:0:1:0:0:1]:80', '[2001:db8::1:0:0:1]:80'],
      ['[2001:0:0:1:0:0:0:1]:80', '[2001:0:0:1::1]:80'],
      ['[2001:db8:0:1:1:1:1:1]:80', '[2001:db8:0:1:1:1:1:1]:80'],
      ['[1::]:80', '[1::]:80'],
      ['[::FFFF:127.0.0.1]:80', '[::ffff:127.0.0.1]:80'],
      ['[::ffff:7f00:1]:80', '[::ffff:127.0.0.1]:80'],
      ['[::127.0.0.1]:80', '[::7f00:1]:80'],
      ['[fe80::1%eth0]:80', '[fe80::1%eth0]:80'],
      ['[FE80:0::1%eth0]:80', '[fe80::1%eth0]:80'],
      [':80', '0.0.0.0:80'],
      ['db-1.internal:5432', 'db-1.internal:5432'],
    ];
    for (const [input, expected] of cases) expect(identity(input), input).toBe(expected);
  });

  it('refuses IPv4 spellings that resolvers read differently', () => {
    for (const input of [
      '127.1:80',
      '127.0.1:80',
      '127.000.0.1:80',
      '0127.0.0.1:80',
      '0x7f.0.0.1:80',
      '2130706433:80',
      'host.123:80',
      '1.2.3.0x4:80',
    ])
      expect(identity(input), input).toMatch(
        /is not an IPv4 address as four decimal numbers without leading zeros/,
      );
    // Names whose last label is not a number stay names.
    expect(identity('1.2.3.4a:80')).toBe('1.2.3.4a:80');
    expect(identity('123.example:80')).toBe('123.example:80');
  });

  it('gives the canonical host to whoever dials it', () => {
    expect(parseAddress('[0:0::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseAddress('Db.Example.:5432')).toEqual({ host: 'db.example', port: 5432 });
    expect(canonicalIPv6('0:0:0:0:1:0:0:0')).toBe('::1:0:0:0');
    expect(canonicalIPv6('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
  });
});
