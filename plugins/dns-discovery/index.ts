import { definePlugin, type Service } from '../../plugin-sdk/index.js';
import { DnsDiscovery } from './discovery.js';
import { checkOptions, type DnsDiscoveryOptions, resolveSettings, schema } from './options.js';

const NAME = 'dns-discovery';
const running = new WeakMap<Service, DnsDiscovery>();

/**
 * Backends from DNS: SRV records (targets, ports, weights) or a name's A/AAAA records with a
 * fixed port, looked up again as their TTL runs out. A failed lookup keeps the last backends
 * (stale-if-error); an empty answer removes them after `hold_empty`. With several workers it
 * runs once, in the primary, whose registry reaches the workers. See README.md.
 */
export default definePlugin<DnsDiscoveryOptions>({
  name: NAME,
  description: 'Backends from DNS SRV or A/AAAA records, re-resolved within their TTL.',
  schema,
  runsIn: 'any',
  check: checkOptions,
  apply(service, options) {
    const settings = resolveSettings(options);
    // Workers get the primary's registry (snapshots): looking up here too would only fight it.
    if (service.runtime.role === 'worker') return;
    const source = service.addDiscoverySource(NAME);
    const log = service.log.child({ plugin: NAME });
    const discovery = new DnsDiscovery(source, settings, log);
    running.set(service, discovery);
    service.hooks.start.tapPromise(NAME, () => discovery.start());
    service.hooks.stop.tap(NAME, () => discovery.stop());
  },
  reconfigure(service, options) {
    running.get(service)?.reconfigure(resolveSettings(options));
  },
});

export { DnsDiscovery };
