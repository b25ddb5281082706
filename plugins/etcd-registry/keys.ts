/**
 * The key layout under the prefix (default `/switchyard/`):
 *
 *   <prefix><service>/backends/<address>   JSON backend spec: {"address": ..., "weight": 2, ...}
 *   <prefix><service>/seeded               written once, when the config's backends seeded the service
 *   <prefix>switches/<name>                JSON {"enabled": true}: process-wide switches (force-disconnect)
 *
 * Addresses are canonical (`127.0.0.1:9001`, `[::1]:9001`), as the registry spells them.
 */
export class KeyLayout {
  constructor(readonly prefix: string) {}

  backendsOf(service: string): string {
    return `${this.prefix}${service}/backends/`;
  }

  backend(service: string, address: string): string {
    return `${this.backendsOf(service)}${address}`;
  }

  seeded(service: string): string {
    return `${this.prefix}${service}/seeded`;
  }

  switch(name: string): string {
    return `${this.prefix}switches/${name}`;
  }

  /** What a key under the prefix is; `other` for keys this plugin does not use (left alone). */
  parse(
    key: string,
  ):
    | { kind: 'backend'; service: string; address: string }
    | { kind: 'switch'; name: string }
    | { kind: 'other' } {
    if (!key.startsWith(this.prefix)) return { kind: 'other' };
    const rest = key.slice(this.prefix.length);
    const at = rest.indexOf('/backends/');
    if (at > 0 && !rest.slice(0, at).includes('/'))
      return { kind: 'backend', service: rest.slice(0, at), address: rest.slice(at + '/backends/'.length) };
    if (rest.startsWith('switches/') && rest.length > 'switches/'.length)
      return { kind: 'switch', name: rest.slice('switches/'.length) };
    return { kind: 'other' };
  }
}
