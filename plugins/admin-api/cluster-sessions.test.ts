import { describe, expect, it } from 'vitest';
import type { ClusterBridge, ListSessionsReply } from '../../plugin-sdk/index.js';
import { CLUSTER_WINDOW, clusterSessions } from './cluster-sessions.js';

/** A primary's bridge whose workers answer with `replies` (sliced to what was asked). */
function fakeBridge(replies: Array<ListSessionsReply | null>) {
  const asked: Array<{ topic: string; payload: { service: string; first: number }; sticky?: boolean }> = [];
  const bridge: ClusterBridge = {
    role: 'primary',
    async request<T>(topic: string, payload: unknown, options?: { sticky?: boolean }) {
      const p = payload as { service: string; first: number };
      asked.push({ topic, payload: p, sticky: options?.sticky });
      return replies.map((r) =>
        r === null ? null : { ...r, sessions: r.sessions.slice(0, p.first) },
      ) as T[];
    },
    handle() {},
    workerCount: () => replies.length,
    workers: () => [],
  };
  return { bridge, asked };
}

const at = (ms: number) => new Date(1_800_000_000_000 + ms).toISOString();
const reply = (worker: number, times: number[], count = times.length): ListSessionsReply => ({
  worker,
  pid: 1000 + worker,
  count,
  sessions: times.map((t, i) => ({ id: i + 1, worker, pid: 1000 + worker, startedAt: at(t) })),
});
const keys = (page: { sessions: Record<string, unknown>[] }) =>
  page.sessions.map((s) => `${s.worker}:${s.id}`);

describe('clusterSessions (the primary merging workers’ pages)', () => {
  it('merges oldest first, ties by worker id, and sums the counts', async () => {
    const { bridge, asked } = fakeBridge([reply(2, [10, 30, 30]), reply(1, [20, 30, 40]), null]);
    const page = await clusterSessions(bridge, 'web', 0, 100);
    expect(keys(page)).toEqual(['2:1', '1:1', '1:2', '2:2', '2:3', '1:3']);
    expect(page).toMatchObject({ count: 6, workers: 2 });
    expect(asked).toEqual([
      { topic: 'core:list-sessions', payload: { service: 'web', first: 100 }, sticky: false },
    ]);
  });

  it('pages with offset and limit; asks each worker for offset + limit only', async () => {
    const { bridge, asked } = fakeBridge([reply(1, [1, 3, 5, 7], 9), reply(2, [2, 4, 6, 8], 9)]);
    const page = await clusterSessions(bridge, 'web', 2, 3);
    expect(asked[0]!.payload.first).toBe(5);
    expect(keys(page)).toEqual(['1:2', '2:2', '1:3']);
    // The count is the workers' live total, not what was sent.
    expect(page.count).toBe(18);
    expect(keys(await clusterSessions(bridge, 'web', 8, 5))).toEqual([]);
  });

  it("keeps a worker's own order when its clock stepped back", async () => {
    // Worker 1's second session reads earlier than its first: the merge must not reorder them,
    // or a window cut at `first` could skip sessions that belong on the page.
    const { bridge } = fakeBridge([reply(1, [50, 10]), reply(2, [20, 60])]);
    expect(keys(await clusterSessions(bridge, 'web', 0, 10))).toEqual(['2:1', '1:1', '1:2', '2:2']);
  });

  it('caps what it asks at the cluster window; no worker answering is an empty page', async () => {
    const { bridge, asked } = fakeBridge([]);
    expect(await clusterSessions(bridge, 'web', CLUSTER_WINDOW, 1000)).toEqual({
      count: 0,
      workers: 0,
      sessions: [],
    });
    expect(asked[0]!.payload.first).toBe(CLUSTER_WINDOW);
  });
});
