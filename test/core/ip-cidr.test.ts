import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CidrList, parseCidr } from '../../core/cidr.js';
import { loadConfigText } from '../../core/config/load.js';
import { formatIp, formatIpv6, isIpv4, parseIp } from '../../core/ip.js';

/** Node's own canonical IPv6 text, through the WHATWG URL parser. */
const canonical = (v6: string) => new URL(`http://[${v6}]/`).hostname.slice(1, -1);

describe('parseIp / formatIp', () => {
  it('agrees with Node on what is an address', () => {
    const inputs = [
      '0.0.0.0',
      '255.255.255.255',
      '127.0.0.1',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '01.2.3.4',
      '1.2.3.04',
      '1..2.3',
      '1.2.3.',
      ' 1.2.3.4',
      '::',
      '::1',
      '1::',
      '1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7::',
      '::2:3:4:5:6:7:8',
      '1::8',
      '1:::8',
      '1::4::8',
      ':1::8',
      '1::8:',
      '12345::1',
      'g::1',
      '::ffff:1.2.3.4',
      '::ffff:1.2.3',
      '1:2:3:4:5:6:1.2.3.4',
      '1:2:3:4:5:6:7:1.2.3.4',
      '::1.2.3.4',
      'fe80::1%eth0',
      '',
      'abcd:ef01:2345:6789:ABCD:EF01:2345:6789',
      '1:2:3:4:5:6:7',
      'localhost',
    ];
    for (const text of inputs) {
      const ours = parseIp(text) !== null;
      expect([text, ours]).toEqual([text, isIP(text) !== 0]);
    }
  });

  it('round-trips random IPv6 addresses and formats them as Node does (RFC 5952)', () => {
    for (let n = 0; n < 2000; n++) {
      const bytes = new Uint8Array(randomBytes(16));
      // Zero runs of every length, so `::` placement is exercised.
      const zeroFrom = n % 8;
      const zeroTo = zeroFrom + (n % 5);
      for (let g = zeroFrom; g < Math.min(8, zeroTo); g++) bytes[g * 2] = bytes[g * 2 + 1] = 0;
      const text = formatIpv6(bytes);
      expect(text).toBe(canonical(text));
      expect(parseIp(text)).toEqual(bytes);
    }
  });

  it('maps IPv4 into the 16-byte form and back', () => {
    const v4 = parseIp('10.1.2.3')!;
    expect(isIpv4(v4)).toBe(true);
    expect(formatIp(v4)).toBe('10.1.2.3');
    expect(parseIp('::ffff:10.1.2.3')).toEqual(v4);
    expect(formatIp(parseIp('2001:db8::1')!)).toBe('2001:db8::1');
    expect(formatIpv6(v4)).toBe('::ffff:a01:203');
  });
});

describe('CidrList', () => {
  it('matches IPv4 and IPv6 networks, IPv4-mapped clients, single hosts and odd prefixes', () => {
    const list = CidrList.parse(['10.0.0.0/8', '192.168.1.7', '172.16.0.0/12', '2001:db8::/33', '0.0.0.0/0']);
    expect(list.has('10.255.0.1')).toBe(true);
    expect(list.has('::ffff:10.0.0.1')).toBe(true);
    expect(list.has('2001:db8:7fff::1')).toBe(true);
    expect(list.has('2001:db8:8000::1')).toBe(false);
    expect(list.has('not an address')).toBe(false);
    const narrow = CidrList.parse(['172.16.0.0/12', '192.168.1.7']);
    expect(narrow.has('172.31.255.255')).toBe(true);
    expect(narrow.has('172.32.0.0')).toBe(false);
    expect(narrow.has('192.168.1.7')).toBe(true);
    expect(narrow.has('192.168.1.8')).toBe(false);
    expect(narrow.has('::1')).toBe(false);
    // "0.0.0.0/0" is every IPv4 client, not every IPv6 one.
    const anyV4 = CidrList.parse(['0.0.0.0/0']);
    expect(anyV4.has('8.8.8.8')).toBe(true);
    expect(anyV4.has('2001:db8::1')).toBe(false);
    expect(CidrList.parse(['::/0']).has('2001:db8::1')).toBe(true);
  });

  it('explains bad entries', () => {
    expect(parseCidr('10.0.0.0/33')).toMatch(/prefix length must be 0 to 32/);
    expect(parseCidr('::/129')).toMatch(/0 to 128/);
    expect(parseCidr('10.0.0/8')).toMatch(/not an IP network/);
    expect(parseCidr('10.0.0.0/')).toMatch(/prefix length/);
    expect(() => CidrList.parse(['10.0.0.0/8', 'nope'], 'trusted')).toThrow(
      /trusted\[1\]: "nope" is not an IP network/,
    );
  });

  it('a bad network in a plugin option is a config error at its line', async () => {
    const yaml = `listen: 127.0.0.1:0
backends: []
plugins:
  source-limits:
    allow:
      - 10.0.0.0/8
      - 10.0.0.300/8
`;
    await expect(loadConfigText(yaml, 'c.yaml')).rejects.toThrow(
      /c\.yaml:7:9 {2}plugins\.source-limits\.allow\[1\] {2}"10\.0\.0\.300\/8" is not an IP network/,
    );
  });
});
