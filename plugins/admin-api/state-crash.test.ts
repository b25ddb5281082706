import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { admin, ClusterProcess, clusterFixture } from '../../test/cluster/cluster-harness.js';

/**
 * The state file's promise through the real CLI: a change the admin API answered survives the
 * process being killed right after (SIGKILL: no stop hook, no final write), one by one or many
 * at once (group commit).
 */
describe('state file across a crash (real CLI)', () => {
  const t = clusterFixture();

  it('every answered change is there after SIGKILL and a restart', async () => {
    const first = new ClusterProcess();
    t.cluster = first;
    const stateFile = join(first.dir, 'state.json');
    first.writeConfig(`
listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:10001" }]
plugins:
  admin-api: { listen: "127.0.0.1:0", state_file: "${stateFile}" }
`);
    first.start();
    await first.waitForLog('switchyard started');
    const api = first.find('admin API listening')!.address as string;
    const added: string[] = [];
    const add = async (address: string) => {
      const res = await admin(api, 'POST', '/backends', { address });
      expect(res.status).toBe(201);
      added.push(address);
    };
    for (let i = 0; i < 30; i++) await add(`127.0.1.${i + 1}:80`);
    await Promise.all(Array.from({ length: 30 }, (_, i) => add(`127.0.2.${i + 1}:80`)));
    expect((await admin(api, 'DELETE', '/backends/127.0.0.1:10001')).status).toBe(200);
    expect((await admin(api, 'PATCH', '/backends/127.0.1.1:80', { weight: 9 })).status).toBe(200);
    process.kill(first.pid, 'SIGKILL');
    await first.waitExit();
    expect(readdirSync(first.dir)).toContain('state.json.journal');

    const second = new ClusterProcess();
    t.cluster = second;
    second.writeConfig(
      `
listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:10001" }]
plugins:
  admin-api: { listen: "127.0.0.1:0", state_file: "${stateFile}" }
`,
    );
    second.start();
    await second.waitForLog('switchyard started');
    const api2 = second.find('admin API listening')!.address as string;
    const backends = (await admin(api2, 'GET', '/backends')).body.backends as Array<{
      address: string;
      weight: number;
    }>;
    expect(backends.map((b) => b.address).sort()).toEqual([...added].sort());
    expect(backends.find((b) => b.address === '127.0.1.1:80')!.weight).toBe(9);
    // The restart folded the journal into the document.
    expect(readdirSync(first.dir)).not.toContain('state.json.journal');
    await first.kill();
  }, 60_000);
});
