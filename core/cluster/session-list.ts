import type { Runtime } from '../runtime.js';

/** Core topic: the primary asks every worker for one page of a service's live sessions. */
export const LIST_SESSIONS = 'core:list-sessions';

/** The most sessions one worker sends per request (bounds the IPC message, ~250 B each). */
export const LIST_WINDOW = 10_000;

export interface ListSessionsRequest {
  service: string;
  /** The worker returns its `first` oldest sessions; the primary merges pages by start time. */
  first: number;
}

export interface ListSessionsReply {
  worker: number;
  pid: number;
  /** Live sessions of the service in this worker. */
  count: number;
  /** Oldest first, at most `first`; each as `Session.toJSON()` plus `worker` and `pid`. */
  sessions: Record<string, unknown>[];
}

/** A worker's answer to LIST_SESSIONS; null when it has no such service. */
export function listSessions(
  runtime: Runtime,
  request: ListSessionsRequest,
  worker: number,
): ListSessionsReply | null {
  const service = runtime.services.get(request.service);
  if (!service) return null;
  const sessions: Record<string, unknown>[] = [];
  const first = Math.max(0, Math.min(request.first, LIST_WINDOW));
  for (const session of service.sessions.values()) {
    if (sessions.length >= first) break;
    sessions.push({ ...session.toJSON(), worker, pid: process.pid });
  }
  return { worker, pid: process.pid, count: service.sessionCount, sessions };
}
