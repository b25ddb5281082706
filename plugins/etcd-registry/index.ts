import {
  definePlugin,
  REGISTRY_WRITER,
  type RegistryWriter,
  SHARED_SWITCHES,
  type SharedSwitches,
} from '../../plugin-sdk/index.js';
import { KeyLayout } from './keys.js';
import { checkOptions, type EtcdRegistryOptions, resolveSettings, schema } from './options.js';
import { EtcdStore, type Managed } from './store.js';
import { EtcdWriter } from './writer.js';

const NAME = 'etcd-registry';

/**
 * One backend registry for many Switchyard instances, kept in etcd: each service's backends
 * are the keys under `<prefix><service>/backends/`; every instance watches them and applies
 * every change, and admin changes at any instance are written there (read-your-writes).
 * Health, breakers and session counts stay local. See README.md and docs/scale-out.md.
 */
export default definePlugin<EtcdRegistryOptions>({
  name: NAME,
  scope: 'process',
  // One client and one watch per instance: in a cluster the primary holds the registry, and
  // its snapshots carry etcd's lists to the workers.
  runsIn: 'primary',
  provides: [REGISTRY_WRITER, SHARED_SWITCHES],
  description: 'Backends kept in etcd and shared by every instance; admin changes written through.',
  schema,
  check: checkOptions,
  apply(runtime, options) {
    const names = [...runtime.services.keys()];
    const settings = resolveSettings(options, names);
    const log = runtime.log.child({ plugin: NAME });
    const keys = new KeyLayout(settings.prefix);
    const managed = new Map<string, Managed>();
    for (const name of settings.services ?? names) {
      const service = runtime.services.get(name)!;
      managed.set(name, { service, source: service.addDiscoverySource(NAME, { exclusive: true }) });
    }
    const store = new EtcdStore(settings, keys, managed, log);
    const writer = new EtcdWriter(store, keys, managed, settings.endpoints);
    runtime.provide<RegistryWriter>(REGISTRY_WRITER, writer);
    runtime.provide<SharedSwitches>(SHARED_SWITCHES, writer);
    runtime.provide<EtcdRegistryApi>(NAME, {
      revision: () => store.revision,
      reachable: () => store.reachable,
    });
    // Before the services start: their first backends are etcd's (or the seed).
    runtime.hooks.start.tapPromise(NAME, () => store.start());
    runtime.hooks.stop.tapPromise(NAME, () => store.stop());
  },
});

/** What `runtime.use('etcd-registry')` gives (tests, other plugins): where this instance stands. */
export interface EtcdRegistryApi {
  /** The last etcd revision applied here. */
  revision(): number;
  reachable(): boolean;
}
