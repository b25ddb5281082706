import {
  type ClusterBridge,
  LIST_SESSIONS,
  LIST_WINDOW,
  type ListSessionsReply,
} from '../../plugin-sdk/index.js';

/**
 * Largest `offset + limit` a cluster primary serves: it asks every worker for its oldest
 * `offset + limit` sessions (one IPC message each, about 250 bytes per session) and merges them.
 * The workers' own bound (`LIST_WINDOW`).
 */
export const CLUSTER_WINDOW = LIST_WINDOW;

export interface ClusterSessionsPage {
  /** Live sessions of the service over the workers that answered, counted as they answered. */
  count: number;
  /** Workers that answered (a worker that exits or does not answer within 5 s is left out). */
  workers: number;
  sessions: Record<string, unknown>[];
}

/**
 * One page of a service's sessions across the workers: each worker sends its oldest
 * `offset + limit`, already oldest first; a k-way merge by start time (then worker id) keeps
 * each worker's own order, so the first `offset + limit` of the merge are exact.
 */
export async function clusterSessions(
  bridge: ClusterBridge,
  service: string,
  offset: number,
  limit: number,
): Promise<ClusterSessionsPage> {
  const first = Math.min(offset + limit, CLUSTER_WINDOW);
  const replies = (
    await bridge.request<ListSessionsReply | null>(LIST_SESSIONS, { service, first }, { sticky: false })
  ).filter((r): r is ListSessionsReply => r !== null && typeof r === 'object');
  let count = 0;
  for (const r of replies) count += r.count;
  return { count, workers: replies.length, sessions: mergeOldestFirst(replies, offset, first) };
}

/** Items `offset` .. `end` of the workers' lists merged by (startedAt, worker). */
function mergeOldestFirst(
  replies: readonly ListSessionsReply[],
  offset: number,
  end: number,
): Record<string, unknown>[] {
  const lists = replies.map((r) => ({
    worker: r.worker,
    items: r.sessions,
    at: r.sessions.map(startedAt),
    next: 0,
  }));
  const page: Record<string, unknown>[] = [];
  for (let n = 0; n < end; n++) {
    let best: (typeof lists)[number] | undefined;
    for (const l of lists) {
      if (l.next >= l.items.length) continue;
      if (
        best === undefined ||
        l.at[l.next]! < best.at[best.next]! ||
        (l.at[l.next] === best.at[best.next] && l.worker < best.worker)
      )
        best = l;
    }
    if (best === undefined) break;
    if (n >= offset) page.push(best.items[best.next]!);
    best.next++;
  }
  return page;
}

function startedAt(session: Record<string, unknown>): number {
  const t = Date.parse(String(session.startedAt));
  return Number.isNaN(t) ? 0 : t;
}
