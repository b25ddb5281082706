/** Counters of one service's pipeline since start. Plain numbers: cheap to bump, read by metrics. */
export interface PipelineCounters {
  accepted: number;
  rejected: number;
  noBackend: number;
  /** Refused at accept: the process session budget (open files limit) was reached. */
  overloaded: number;
  connectFailures: number;
  retries: number;
  established: number;
  closed: number;
  /** Closed by the peek stage: a tap waited for client bytes that did not come in time. */
  peekTimeouts: number;
  /** Accepted here and sent by a `route` tap to another service's pool. */
  routed: number;
  /** Sent to this service's pool by another service's `route` tap (accepted there). */
  routedIn: number;
}

/** A service's counters: the pipeline's, plus connections dropped at `max_connections`. */
export type ServiceCounters = PipelineCounters & { dropped: number };

/** Every counter at 0 (a fresh service; the base the cluster primary sums onto). */
export function zeroCounters(): PipelineCounters {
  return {
    accepted: 0,
    rejected: 0,
    noBackend: 0,
    overloaded: 0,
    connectFailures: 0,
    retries: 0,
    established: 0,
    closed: 0,
    peekTimeouts: 0,
    routed: 0,
    routedIn: 0,
  };
}
