import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PersistedBackend, readState, type StateDocument, StateFile } from './state-file.js';

/** The state file's document + journal on real files: what a restart reads after each kind of end. */
describe('state file journal', () => {
  let dir: string;
  let path: string;
  /** The "registry": what the snapshot function reports. */
  let list: PersistedBackend[];
  const snapshot = (): StateDocument => ({
    version: 1,
    updated_at: '',
    services: { web: { backends: list.map((b) => ({ ...b })), config_backends: [] } },
  });
  const addresses = async () => (await readState(path)).doc?.services.web?.backends.map((b) => b.address);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-journal-'));
    path = join(dir, 'state.json');
    list = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Applies a change to the "registry" and journals it, as the admin API does. */
  function add(file: StateFile, address: string): number {
    const b = { address, weight: 1 };
    list.push(b);
    return list.length === 1
      ? file.append({ service: 'web', list: [b], config_backends: [] })
      : file.append({ service: 'web', set: b });
  }

  it('acknowledges a change once its line is on disk; a restart replays the journal', async () => {
    const file = new StateFile(path, snapshot);
    expect(await file.load()).toBeUndefined();
    for (let i = 1; i <= 5; i++) await file.durable(add(file, `10.0.0.${i}:80`));
    list.splice(1, 1);
    await file.durable(file.append({ service: 'web', remove: '10.0.0.2:80' }));
    list[0]!.weight = 7;
    await file.durable(file.append({ service: 'web', set: { address: '10.0.0.1:80', weight: 7 } }));
    // No document yet: the journal alone is the state (as after a crash).
    expect(await readdir(dir)).toEqual(['state.json.journal']);
    expect(await addresses()).toEqual(['10.0.0.1:80', '10.0.0.3:80', '10.0.0.4:80', '10.0.0.5:80']);
    expect((await readState(path)).doc!.services.web!.backends[0]).toEqual({
      address: '10.0.0.1:80',
      weight: 7,
    });

    // The next start folds the journal into the document.
    const again = new StateFile(path, snapshot);
    expect((await again.load())!.services.web!.backends.map((b) => b.address)).toHaveLength(4);
    expect(await readdir(dir)).toEqual(['state.json']);
    expect(JSON.parse(await readFile(path, 'utf8')).seq).toBe(7);
  });

  it('changes that arrive during a write share the next one (group commit)', async () => {
    const file = new StateFile(path, snapshot);
    await file.load();
    const seqs = Array.from({ length: 200 }, (_, i) => add(file, `10.0.${i >> 8}.${i & 255}:80`));
    await Promise.all(seqs.map((s) => file.durable(s)));
    expect(await addresses()).toHaveLength(200);
    // One line per change, far fewer writes: every line is there once.
    const lines = (await readFile(`${path}.journal`, 'utf8')).trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).seq)).toEqual(seqs);
  });

  it('folds the journal into the document once it outgrows it, so work per change stays constant', async () => {
    const file = new StateFile(path, snapshot, 2000);
    await file.load();
    let largest = 0;
    for (let i = 0; i < 300; i++) {
      await file.durable(add(file, `10.1.${i >> 8}.${i & 255}:80`));
      largest = Math.max(largest, (await stat(`${path}.journal`).catch(() => ({ size: 0 }))).size);
    }
    const document = (await stat(path)).size;
    // Never more than the threshold (twice the document) plus one batch.
    expect(largest).toBeLessThan(Math.max(2000, 2 * document) + 200);
    expect(await addresses()).toHaveLength(300);
    await file.close();
    expect(await readdir(dir)).toEqual(['state.json']);
    expect(JSON.parse(await readFile(path, 'utf8')).services.web.backends).toHaveLength(300);
  });

  it('drops a torn last line (a crash mid-append, never acknowledged) and says so', async () => {
    await writeFile(
      path,
      JSON.stringify({
        version: 1,
        seq: 1,
        services: { web: { backends: [{ address: 'a:1', weight: 1 }] } },
      }),
    );
    await writeFile(
      `${path}.journal`,
      `${JSON.stringify({ seq: 2, service: 'web', set: { address: 'b:1', weight: 1 } })}\n{"seq":3,"service":"web","se`,
    );
    const torn: number[] = [];
    const doc = await new StateFile(path, snapshot).load((line) => torn.push(line));
    expect(torn).toEqual([2]);
    expect(doc!.services.web!.backends.map((b) => b.address)).toEqual(['a:1', 'b:1']);
    // Folded at load: the torn line is gone for good, and new lines follow clean ones.
    expect(await readdir(dir)).toEqual(['state.json']);
  });

  it('replays nothing twice after a crash between a new document and emptying the journal', async () => {
    await writeFile(
      path,
      JSON.stringify({
        version: 1,
        seq: 2,
        services: {
          web: {
            backends: [
              { address: 'a:1', weight: 1 },
              { address: 'b:1', weight: 1 },
            ],
          },
        },
      }),
    );
    await writeFile(
      `${path}.journal`,
      [
        { seq: 1, service: 'web', list: [{ address: 'a:1', weight: 1 }], config_backends: [] },
        { seq: 2, service: 'web', set: { address: 'b:1', weight: 1 } },
        { seq: 3, service: 'web', remove: 'a:1' },
      ]
        .map((r) => `${JSON.stringify(r)}\n`)
        .join(''),
    );
    expect(await addresses()).toEqual(['b:1']);
  });

  it('refuses a journal damaged before its end, naming the line', async () => {
    await writeFile(
      `${path}.journal`,
      `${JSON.stringify({ seq: 1, service: 'web', set: { address: 'b:1', weight: 1 } })}\nnot json\n${JSON.stringify({ seq: 3, service: 'web', remove: 'b:1' })}\n`,
    );
    await expect(new StateFile(path, snapshot).load()).rejects.toThrow(
      `state file journal ${path}.journal:2 is not a valid change record; fix or delete it (and ${path}) to start from the config`,
    );
    await writeFile(
      `${path}.journal`,
      `${JSON.stringify({ seq: 1, service: 'web', set: { address: 'b:1' } })}\n`,
    );
    await expect(new StateFile(path, snapshot).load()).rejects.toThrow(
      /journal .*:1 is not a valid change record/,
    );
  });
});
