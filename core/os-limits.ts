import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseAddress } from './address.js';
import type { BackendSpec } from './types.js';

/** The backlog every listener asks for (core/service.ts #bind); the kernel caps it at somaxconn. */
export const LISTEN_BACKLOG = 511;

/** `net.ipv4.ip_local_port_range`: the source ports the kernel picks from for outgoing connects. */
export interface PortRange {
  readonly low: number;
  readonly high: number;
}

/** Kernel settings read at start; a field is undefined when it could not be read (not Linux, no /proc). */
export interface OsLimits {
  readonly somaxconn?: number;
  readonly portRange?: PortRange;
}

/** One service as the source-port check sees it. */
export interface ServiceDemand {
  readonly name: string;
  /** Distinct backend `ip:port` destinations configured (0: backends come later, e.g. the admin API). */
  readonly destinations: number;
  /** Sessions this service may hold across all workers (Infinity when unbounded). */
  readonly maxSessions: number;
}

export interface LimitInputs extends OsLimits {
  /** The backlog listeners ask for. */
  readonly backlog: number;
  /** Sessions all processes together may hold (Infinity when the open files limit is unknown). */
  readonly sessionBudget: number;
  readonly services: readonly ServiceDemand[];
}

/**
 * Start-up checks of kernel settings against what the configuration asks for. Pure: one
 * message per problem, each naming the current value and the sysctl that fixes it.
 */
export function checkLimits(inputs: LimitInputs): string[] {
  const messages: string[] = [];
  const { somaxconn, portRange, backlog } = inputs;
  if (somaxconn !== undefined && somaxconn < backlog) {
    messages.push(
      `net.core.somaxconn is ${somaxconn}, below the listen backlog of ${backlog}: bursts of new connections ` +
        `beyond ${somaxconn} waiting to be accepted are dropped; raise it: sysctl -w net.core.somaxconn=4096`,
    );
  }
  if (portRange !== undefined) {
    const ports = portCount(portRange);
    for (const service of inputs.services) {
      // Zero destinations: nothing to say until backends are added at run time.
      if (service.destinations === 0) continue;
      const sessions = Math.min(inputs.sessionBudget, service.maxSessions);
      const reachable = ports * service.destinations;
      if (!Number.isFinite(sessions) || sessions <= reachable) continue;
      messages.push(
        `service "${service.name}": ${sessions} sessions allowed but only ${reachable} upstream connections possible ` +
          `(${ports} source ports in net.ipv4.ip_local_port_range ${portRange.low}-${portRange.high} × ` +
          `${service.destinations} backend ip:port): upstream connects may fail with EADDRNOTAVAIL; widen the range ` +
          `(sysctl -w net.ipv4.ip_local_port_range="10240 65535") or add backend addresses`,
      );
    }
  }
  return messages;
}

/** Source ports available per (source address, destination ip:port). */
export function portCount(range: PortRange): number {
  return Math.max(0, range.high - range.low + 1);
}

/**
 * Distinct `host:port` destinations among the backends. A host name counts once even if it
 * resolves to several addresses, so the count errs towards warning.
 */
export function distinctDestinations(backends: readonly BackendSpec[]): number {
  const seen = new Set<string>();
  for (const backend of backends) {
    const parsed = parseAddress(backend.address);
    seen.add(typeof parsed === 'string' ? backend.address : `${parsed.host.toLowerCase()}|${parsed.port}`);
  }
  return seen.size;
}

/** Worker processes for `workers`: `auto` is one per CPU the process may use, at most 64. */
export function workerCount(workers: number | 'auto'): number {
  return workers === 'auto' ? Math.max(1, Math.min(64, availableParallelism())) : workers;
}

/** Reads the kernel settings from `proc` (default /proc); each one is undefined when missing or unreadable. */
export function readOsLimits(proc = '/proc'): OsLimits {
  const somaxconn = readInts(`${proc}/sys/net/core/somaxconn`);
  const range = readInts(`${proc}/sys/net/ipv4/ip_local_port_range`);
  return {
    somaxconn: somaxconn?.length === 1 ? somaxconn[0] : undefined,
    portRange: range?.length === 2 ? { low: range[0] as number, high: range[1] as number } : undefined,
  };
}

function readInts(file: string): number[] | undefined {
  try {
    const fields = readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    return fields.every(Number.isSafeInteger) ? fields : undefined;
  } catch {
    return undefined;
  }
}
