// An example third-party plugin, written only against the public SDK. It refuses clients whose
// address is not in one of the listed networks. It taps `admit`, which runs once the client is
// identified: the real client when a PROXY header gave one (proxy-protocol), else the TCP peer —
// and before anything is read when no plugin peeks.
//
//   plugins:
//     ./examples/allow-list:            # or its package name once published
//       allow: [127.0.0.0/8, 10.0.0.0/8, "::1/128"]
//       reset: false
import { BlockList, isIP } from 'node:net';
import { definePlugin } from 'switchyard/plugin-sdk';

export default definePlugin({
  name: 'allow-list',
  version: '1.0.0',
  description: 'Accept clients from the listed networks only.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['allow'],
    properties: {
      allow: {
        type: 'array',
        minItems: 1,
        items: { type: 'string', pattern: '^[0-9a-fA-F:.]+/\\d{1,3}$' },
        description: 'Networks in CIDR notation, IPv4 or IPv6.',
      },
      reset: { type: 'boolean', default: false, description: 'Refuse with a TCP reset instead of a FIN.' },
    },
  },
  /** @param {import('switchyard/plugin-sdk').Service} service */
  apply(service, options) {
    const list = new BlockList();
    for (const cidr of options.allow) {
      const [net, bits] = cidr.split('/');
      const family = isIP(net) === 6 ? 'ipv6' : 'ipv4';
      if (isIP(net) === 0) throw new Error(`allow-list: "${cidr}" is not a network`);
      list.addSubnet(net, Number(bits), family);
    }
    // One rejection object for every refusal: no allocation per refused client.
    const rejection = { reason: 'not-allowed', reset: options.reset };
    let refused = 0;
    service.hooks.admit.tap('allow-list', (session) => {
      const address = session.remoteAddress.replace(/^::ffff:/, '');
      if (list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')) return undefined;
      refused++;
      return rejection;
    });
    service.provide('allow-list', { refused: () => refused });
  },
});
