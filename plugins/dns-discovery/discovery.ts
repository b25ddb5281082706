import { Resolver } from 'node:dns/promises';
import type { Logger } from 'pino';
import type { DiscoverySource, ReconcileResult } from '../../plugin-sdk/index.js';
import { lookup } from './lookup.js';
import { type DnsSettings, TRIES } from './options.js';

/** What the last lookups said; logs are written when it changes, never per lookup. */
type State = 'starting' | 'records' | 'empty' | 'failing';

/**
 * Looks a name up on a schedule and hands what it finds to the service's discovery source.
 * Records: the backends, re-checked when the shortest TTL expires (within min/max_refresh).
 * Empty answer: the backends stay for `hold_empty`, then go. Failure (timeout, refused,
 * SERVFAIL): the last backends stay (stale-if-error), retried with back-off from min_refresh.
 */
export class DnsDiscovery {
  #settings: DnsSettings;
  #resolver: Resolver;
  #state: State = 'starting';
  #emptySince: number | null = null;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Bumped by reconfigure and stop: an answer to an older lookup is dropped. */
  #generation = 0;
  /** When the last lookup finished (ms), and the one after it is due (for tests and logs). */
  nextLookupAt = 0;
  lookups = 0;

  constructor(
    private readonly source: DiscoverySource,
    settings: DnsSettings,
    private readonly log: Logger,
  ) {
    this.#settings = settings;
    this.#resolver = makeResolver(settings);
  }

  /** The first lookup (awaited, so its backends are there before the listeners bind), then the schedule. */
  async start(): Promise<void> {
    await this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#generation++;
    clearTimeout(this.#timer);
    this.#resolver.cancel();
  }

  /** New options (reload): a new resolver, and a lookup now. */
  reconfigure(settings: DnsSettings): void {
    const nameChanged = settings.name !== this.#settings.name || settings.port !== this.#settings.port;
    this.#settings = settings;
    this.#resolver.cancel();
    this.#resolver = makeResolver(settings);
    this.#generation++;
    if (nameChanged) this.#state = 'starting';
    this.log.info({ name: settings.name }, 'dns-discovery: options reloaded; looking up now');
    clearTimeout(this.#timer);
    void this.#run();
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    const generation = this.#generation;
    const settings = this.#settings;
    let delay: number;
    try {
      const found = await lookup(this.#resolver, settings);
      if (generation !== this.#generation) return;
      this.lookups++;
      delay = found.kind === 'records' ? this.#onRecords(found.specs, found.ttl) : this.#onEmpty(found.code);
    } catch (err) {
      if (generation !== this.#generation) return;
      this.lookups++;
      delay = this.#onFailure(err as NodeJS.ErrnoException);
    }
    this.nextLookupAt = Date.now() + delay;
    this.#timer = setTimeout(() => void this.#run(), delay);
    this.#timer.unref();
  }

  #onRecords(specs: Parameters<DiscoverySource['update']>[0], ttl: number | null): number {
    const s = this.#settings;
    if (this.#state === 'failing' || this.#state === 'empty')
      this.log.info({ name: s.name, backends: specs.length }, 'dns-discovery: the name resolves again');
    this.#state = 'records';
    this.#emptySince = null;
    this.#failures = 0;
    this.source.setStatus(true);
    this.#report(this.source.update(specs));
    return clamp(ttl === null ? s.refresh : ttl * 1000, s.minRefresh, s.maxRefresh);
  }

  #onEmpty(code: string): number {
    const s = this.#settings;
    const now = Date.now();
    this.#failures = 0;
    this.source.setStatus(true);
    if (this.#state !== 'empty') {
      this.#emptySince = now;
      const kept = this.source.status.listed;
      this.log.warn(
        { name: s.name, answer: code === 'ENOTFOUND' ? 'NXDOMAIN' : 'no data', kept, holdEmpty: s.holdEmpty },
        kept > 0 && s.holdEmpty > 0
          ? 'dns-discovery: the name has no records; keeping the last backends for hold_empty, then removing them'
          : 'dns-discovery: the name has no records; no backends from DNS',
      );
    }
    this.#state = 'empty';
    const left = this.#emptySince! + s.holdEmpty - now;
    if (left <= 0) {
      if (this.source.status.listed > 0) {
        this.log.warn(
          { name: s.name },
          'dns-discovery: still no records after hold_empty; removing the backends',
        );
        this.#report(this.source.update([]));
      }
      return clamp(s.refresh, s.minRefresh, s.maxRefresh);
    }
    return clamp(Math.min(left, s.refresh), s.minRefresh, s.maxRefresh);
  }

  #onFailure(err: NodeJS.ErrnoException): number {
    const s = this.#settings;
    const reason = err.code ?? err.message;
    if (this.#state !== 'failing') {
      this.log.warn(
        { name: s.name, err: reason, kept: this.source.status.listed },
        'dns-discovery: lookup failed; keeping the last backends until it succeeds',
      );
    }
    this.#state = 'failing';
    this.#failures++;
    this.source.setStatus(false, `cannot look up ${s.name}: ${reason}`);
    return clamp(s.minRefresh * 2 ** Math.min(this.#failures - 1, 20), s.minRefresh, s.maxRefresh);
  }

  /** One line per change of the set (never per lookup): what came, went or changed. */
  #report(result: ReconcileResult): void {
    const { added, removed, updated, conflicts, invalid } = result;
    if (added.length + removed.length + updated.length > 0)
      this.log.info(
        { name: this.#settings.name, added, removed, updated },
        'dns-discovery: backends changed',
      );
    for (const c of conflicts)
      this.log.warn(
        { backend: c.address, owner: c.owner },
        'dns-discovery: a backend in DNS is in the service already from another origin; that one keeps it',
      );
    for (const i of invalid)
      this.log.error({ backend: i.address, error: i.error }, 'dns-discovery: record refused as a backend');
  }
}

function makeResolver(settings: DnsSettings): Resolver {
  const resolver = new Resolver({ timeout: settings.timeout, tries: TRIES });
  if (settings.resolvers !== null) resolver.setServers(settings.resolvers);
  return resolver;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.round(value)));
}
