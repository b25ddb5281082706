import { createServer } from 'node:net';
import type { Logger } from 'pino';
import { parseListenAddress } from '../address.js';
import type { SwitchyardConfig } from '../config/types.js';
import { listenError } from '../listen.js';
import type { ListenHandle, ToWorker } from './messages.js';

/** What the slots need to know about a worker (the primary's member record). */
export interface SlotMember {
  readonly worker: { readonly id: number; isDead(): boolean };
  readonly generation: number;
  readonly retiring: boolean;
  /** Started and listening: ready to take a socket on while running. */
  readonly listening: boolean;
}

/** One SO_REUSEPORT listening socket: its own accept queue in the kernel's reuseport group. */
interface Slot {
  readonly id: number;
  readonly group: Group;
  /** The primary's copy of the descriptor. It never listens here: it keeps the socket alive. */
  readonly handle: ListenHandle;
  /** The worker whose own socket this is; undefined while it needs one (its worker died). */
  owner: SlotMember | undefined;
  /** Workers accepting on it: the owner, a worker fostering it, an old generation draining. */
  readonly holders: Set<SlotMember>;
}

/** One listen address of one service: the sockets bound on it, one per worker. */
interface Group {
  readonly service: string;
  readonly address: string;
  readonly host: string;
  /** The port the workers bind; 0 until the first socket of a `:0` listener is bound. */
  port: number;
  readonly slots: Slot[];
  /** The worker binding `:0` for everyone (the kernel picks the port once). */
  resolver: SlotMember | undefined;
}

/**
 * `scheduling: reuseport`, in the primary. Each worker binds listening sockets of its own with
 * SO_REUSEPORT and accepts on them; the primary never accepts, but keeps a copy of every
 * descriptor (sent over IPC). That copy is what makes the socket outlive its worker:
 *
 * - the kernel resets every connection still queued on a socket when its last descriptor
 *   closes. A worker that dies, or an old generation that stops after a reload, therefore
 *   closes only its copy; the socket, and the connections queued on it, stay.
 * - a reload hands each socket to a worker of the new generation (both accept on it for a
 *   moment), then the old worker closes its copy: nothing queued is lost, nothing refused.
 * - a dead worker's sockets are handed at once to a live worker (fostered), then to the
 *   replacement when it listens.
 *
 * Only sockets a reload leaves without a worker (the new config has fewer workers or drops
 * the address) are closed: the old worker closes the last copy when it stops, and connections
 * that reach that queue after its last accept are reset (docs/multi-process.md).
 */
export class ListenerSlots {
  readonly #groups = new Map<string, Group>();
  /** Workers waiting for the port of a `:0` listener before they can bind. */
  readonly #waiting = new Map<SlotMember, SwitchyardConfig>();
  /** Per worker, the listeners it must bind itself (nothing to adopt). */
  readonly #toBind = new Map<SlotMember, Group[]>();
  /** Where each listener sits in the current config's `listen` list (fostering needs the index). */
  readonly #indexes = new Map<string, number>();
  #nextId = 1;

  constructor(
    private readonly send: (member: SlotMember, message: ToWorker, handle?: ListenHandle) => void,
    private readonly members: () => Iterable<SlotMember>,
    private readonly generation: () => number,
    private readonly log: Logger,
  ) {}

  /**
   * Before a generation is forked: fails if a listen address with a fixed port is taken by
   * another program. Needed because SO_REUSEPORT would otherwise let our workers join that
   * program's sockets (same user) and split its traffic, where one process would fail to bind.
   */
  async checkFree(config: SwitchyardConfig): Promise<void> {
    for (const service of config.services) {
      for (const address of service.listen) {
        const parsed = parseListenAddress(address);
        if (typeof parsed === 'string' || parsed.port === 0) continue;
        if (this.#groups.has(groupKey(service.name, address))) continue;
        await probe(parsed.host, parsed.port).catch((err: NodeJS.ErrnoException) => {
          throw listenError(address, err);
        });
      }
    }
  }

  /**
   * A worker said hello: hands it a socket per listener where one needs a worker (a dead
   * worker's, or the previous generation's on reload), then tells it the port to bind for the
   * rest. The handles go first; IPC keeps the order, so `listen` arrives after them.
   */
  plan(member: SlotMember, config: SwitchyardConfig): void {
    const toBind: Group[] = [];
    for (const service of config.services) {
      service.listen.forEach((address, index) => {
        const group = this.#group(service.name, address);
        const slot = group.slots.find((s) => needsOwner(s, member.generation));
        if (slot === undefined) {
          toBind.push(group);
          return;
        }
        slot.owner = member;
        slot.holders.add(member);
        this.send(member, { t: 'socket', service: service.name, index, slot: slot.id }, slot.handle);
      });
    }
    this.#toBind.set(member, toBind);
    this.#waiting.set(member, config);
    this.#sendListen(member);
  }

  /** A worker bound a socket of its own and sent the primary its copy. */
  bound(
    member: SlotMember,
    config: SwitchyardConfig,
    service: string,
    index: number,
    port: number,
    handle: ListenHandle,
  ): void {
    const address = config.services.find((s) => s.name === service)?.listen[index];
    if (address === undefined) {
      handle.close();
      return;
    }
    const group = this.#group(service, address);
    const slot: Slot = { id: this.#nextId++, group, handle, owner: member, holders: new Set([member]) };
    group.slots.push(slot);
    if (group.port === 0) {
      group.port = port;
      for (const waiting of [...this.#waiting.keys()]) this.#sendListen(waiting);
    }
    if (member.worker.isDead()) this.left(member);
  }

  /**
   * A worker listens on everything it was given: workers that were fostering its sockets let
   * them go (an old generation keeps accepting until it is told to stop).
   */
  listening(member: SlotMember): void {
    for (const group of this.#groups.values()) {
      for (const slot of group.slots) {
        if (slot.owner !== member) continue;
        for (const holder of slot.holders) {
          if (holder === member || holder.generation !== member.generation || holder.retiring) continue;
          slot.holders.delete(holder);
          this.send(holder, { t: 'release', service: group.service, slots: [slot.id] });
        }
      }
    }
  }

  /**
   * A worker exited. Its sockets stay open (the primary's copy); each one without a live
   * worker goes to another worker of the current generation until a replacement takes it.
   */
  left(member: SlotMember): void {
    this.#waiting.delete(member);
    this.#toBind.delete(member);
    for (const group of this.#groups.values()) {
      if (group.resolver === member) {
        group.resolver = undefined;
        for (const waiting of [...this.#waiting.keys()]) this.#sendListen(waiting);
      }
      for (const slot of group.slots) {
        if (!slot.holders.delete(member) && slot.owner !== member) continue;
        if (slot.owner === member) slot.owner = undefined;
        this.#rehome(slot);
      }
    }
  }

  /**
   * After a reload, once the new generation listens and the old one is told to stop: sockets
   * no worker of the new generation took are closed here; the old worker holds the last copy
   * and closes it when it stops.
   */
  retireUnclaimed(): number {
    const current = this.generation();
    let closed = 0;
    for (const [key, group] of this.#groups) {
      for (const slot of [...group.slots]) {
        if ([...slot.holders].some((h) => h.generation === current && !h.worker.isDead())) continue;
        group.slots.splice(group.slots.indexOf(slot), 1);
        slot.handle.close();
        closed++;
      }
      if (group.slots.length === 0) this.#groups.delete(key);
    }
    return closed;
  }

  /** Graceful stop: the primary lets go first, so the sockets close as the workers stop accepting. */
  closeAll(): void {
    for (const group of this.#groups.values()) for (const slot of group.slots) slot.handle.close();
    this.#groups.clear();
    this.#waiting.clear();
    this.#toBind.clear();
  }

  /** Sockets held, per `service address` (for logs and tests). */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const group of this.#groups.values()) out[`${group.service} ${group.address}`] = group.slots.length;
    return out;
  }

  #group(service: string, address: string): Group {
    const key = groupKey(service, address);
    let group = this.#groups.get(key);
    if (group === undefined) {
      const parsed = parseListenAddress(address);
      if (typeof parsed === 'string') throw new Error(`listener ${address}: ${parsed}`);
      group = { service, address, host: parsed.host, port: parsed.port, slots: [], resolver: undefined };
      this.#groups.set(key, group);
    }
    return group;
  }

  /**
   * Sends `listen` once every listener the worker must bind has a port: a `:0` listener waits
   * for the first worker that binds it (the resolver), so all workers share the port the
   * kernel picked.
   */
  #sendListen(member: SlotMember): void {
    const config = this.#waiting.get(member);
    if (config === undefined) return;
    for (const group of this.#toBind.get(member) ?? []) {
      if (group.port !== 0 || group.resolver === member) continue;
      if (group.resolver !== undefined) return;
      group.resolver = member;
    }
    this.#waiting.delete(member);
    const services: Record<string, number[]> = {};
    for (const service of config.services)
      services[service.name] = service.listen.map((address) => this.#group(service.name, address).port);
    this.send(member, { t: 'listen', services });
  }

  /** A socket lost a worker: a live worker of the current generation takes it on too. */
  #rehome(slot: Slot): void {
    const current = this.generation();
    const live = (m: SlotMember) => !m.worker.isDead() && !m.retiring && m.generation === current;
    const serving = [...slot.holders].filter(live);
    if (serving.length > 0) {
      // A failed reload: the worker of the old generation that still accepts on it owns it again.
      if (slot.owner === undefined && serving.length === 1 && !this.#owns(serving[0]!, slot.group))
        slot.owner = serving[0];
      return;
    }
    const index = this.#indexes.get(groupKey(slot.group.service, slot.group.address));
    // Not in the current config (a reload dropped it): nobody takes it; retireUnclaimed closes it.
    if (index === undefined) return;
    const candidates = [...this.members()].filter((m) => live(m) && m.listening);
    if (candidates.length === 0) {
      this.log.warn(
        { listener: slot.group.address, service: slot.group.service },
        'no worker to take over a listening socket: its connections wait in the queue for the replacement',
      );
      return;
    }
    const foster = candidates.reduce((best, m) => (this.#held(m) < this.#held(best) ? m : best));
    slot.holders.add(foster);
    this.log.info(
      { listener: slot.group.address, service: slot.group.service, worker: foster.worker.id },
      'listening socket of a dead worker handed over to another worker until its replacement listens',
    );
    this.send(foster, { t: 'socket', service: slot.group.service, index, slot: slot.id }, slot.handle);
  }

  #owns(member: SlotMember, group: Group): boolean {
    return group.slots.some((s) => s.owner === member);
  }

  #held(member: SlotMember): number {
    let n = 0;
    for (const group of this.#groups.values())
      for (const slot of group.slots) if (slot.holders.has(member)) n++;
    return n;
  }

  /** Records where each listener sits in the current config (a reload may reorder them). */
  useConfig(config: SwitchyardConfig): void {
    this.#indexes.clear();
    for (const service of config.services) {
      service.listen.forEach((address, index) => {
        this.#indexes.set(groupKey(service.name, address), index);
      });
    }
  }
}

function groupKey(service: string, address: string): string {
  return `${service}\u0000${address}`;
}

/** A socket needs a worker of `generation`: its owner died, or belongs to an older generation. */
function needsOwner(slot: Slot, generation: number): boolean {
  const owner = slot.owner;
  return owner === undefined || owner.worker.isDead() || owner.generation !== generation;
}

/** Binds and closes at once, without SO_REUSEPORT: fails if anything listens there. */
function probe(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}
