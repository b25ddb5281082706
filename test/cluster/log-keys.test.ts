import { describe, expect, it } from 'vitest';
import { exchange } from '../../testing/index.js';
import { ClusterProcess, clusterFixture } from './cluster-harness.js';
import { duplicateKeys } from './strict-json.js';

/**
 * Each JSON log line carries each key once: a strict parser (or a pipeline that indexes fields)
 * rejects or drops one of two. Session-close lines used to carry `service` twice (the service
 * logger's binding and the session's own field), `worker died` carried `pid` twice (the
 * primary's and the dead worker's). The harness records every line with a repeated key and
 * fails the test on `kill()`; these tests make the lines that had one.
 */
describe('duplicateKeys (the strict check the harness applies to every log line)', () => {
  it('finds a key given twice in one object, at any depth, and nothing else', () => {
    expect(duplicateKeys('{"pid":1,"msg":"x","pid":2}')).toEqual(['pid']);
    expect(duplicateKeys('{"a":{"b":1,"b":2},"b":3}')).toEqual(['b']);
    expect(duplicateKeys('{"a":[{"b":1},{"b":2}],"c":{"a":1}}')).toEqual([]);
    expect(duplicateKeys('{"msg":"a \\"msg\\": {\\"x\\",","x":"msg","y":"}"}')).toEqual([]);
    expect(duplicateKeys('{"s":"\\\\","s":1}')).toEqual(['s']);
  });
});

describe('log lines through the real CLI carry each key once', () => {
  const t = clusterFixture();

  it('session-close lines in one process, at debug', async () => {
    const backend = await t.kit.named('a');
    const proc = new ClusterProcess();
    t.cluster = proc;
    proc.writeConfig(
      `log_level: debug\nlisten: 127.0.0.1:0\nbackends: [{ address: "${backend.address}" }]\nplugins:\n  access-log: {}\n`,
    );
    proc.start();
    const started = await proc.waitForLog('switchyard started', 20_000);
    const proxy = (started.services as Array<{ listen: string[] }>)[0]!.listen[0]!;
    expect((await exchange(proxy, 'x')).toString()).toBe('a\nx');
    const closed = await proc.waitForLog('closed');
    expect(closed).toMatchObject({ service: 'default', pool: 'default', closeReason: expect.any(String) });
    await proc.waitForLog('session closed');
    expect(proc.duplicateKeyLines).toEqual([]);
  });

  it('`worker died` and session-close lines in a cluster', async () => {
    const backend = await t.kit.named('a');
    const proc = new ClusterProcess();
    t.cluster = proc;
    proc.writeConfig(
      `workers: 2\nlog_level: debug\nlisten: 127.0.0.1:0\nbackends: [{ address: "${backend.address}" }]\n`,
    );
    proc.start();
    const { proxy, pids } = await proc.started();
    expect((await exchange(proxy, 'x')).toString()).toBe('a\nx');
    await proc.waitForLog('closed');
    process.kill(pids[0]!, 'SIGKILL');
    const died = await proc.waitForLog('worker died', 20_000);
    // `pid` says which process wrote the line (the primary); the dead one is `workerPid`.
    expect(died).toMatchObject({ pid: proc.pid, workerPid: pids[0], signal: 'SIGKILL' });
    await proc.waitForLog('replacement worker listening', 20_000);
    expect(proc.duplicateKeyLines).toEqual([]);
  }, 60_000);
});
