import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, exchange } from '../../testing/index.js';

const BIN = fileURLToPath(new URL('../../bin/switchyard.js', import.meta.url));

const hasStrace = await promisify(execFile)('strace', ['-qq', '-e', 'trace=none', 'true']).then(
  () => true,
  () => false,
);

/**
 * TCP_NODELAY costs one `setsockopt` per socket. On Linux an accepted connection inherits it
 * from its listening socket, so the core sets it once per listener: per session only the
 * upstream socket needs the call.
 */
describe.skipIf(!hasStrace || process.platform !== 'linux')('TCP_NODELAY (strace)', () => {
  const kit = createTestKit();
  const dirs: string[] = [];
  afterEach(async () => {
    await kit.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** Runs the proxy under strace, proxies `sessions` exchanges, stops it; returns its TCP_NODELAY calls. */
  const nodelayCalls = async (tcpNodelay: boolean, sessions: number): Promise<string[]> => {
    const echo = await kit.echo();
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-nodelay-'));
    dirs.push(dir);
    const config = join(dir, 'switchyard.yaml');
    writeFileSync(
      config,
      `listen: 127.0.0.1:0\ntcp_nodelay: ${tcpNodelay}\nbackends: [{ address: "${echo.address}" }]\n`,
    );
    const child = spawn(
      'strace',
      ['-f', '-qq', '-e', 'trace=setsockopt', process.execPath, BIN, '--config', config, '--no-pretty'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let trace = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      trace += c.toString();
    });
    const exited = once(child, 'exit');
    const end = Date.now() + 15_000;
    while (!/switchyard started/.test(out) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    const address = /"listen":\["([^"]+)"/.exec(out)?.[1];
    if (address === undefined) {
      child.kill('SIGKILL');
      throw new Error(`the proxy did not start: ${out}`);
    }
    for (let i = 0; i < sessions; i++)
      expect((await exchange(address, `ping ${i}`)).toString()).toBe(`ping ${i}`);
    child.kill('SIGTERM');
    await exited;
    return trace.split('\n').filter((l) => l.includes('TCP_NODELAY'));
  };

  it('one call for the listener and one per upstream connection; none with tcp_nodelay: false', async () => {
    const calls = await nodelayCalls(true, 10);
    expect(calls).toHaveLength(1 + 10);
    expect(calls.every((l) => /\[1\], 4\) = 0/.test(l))).toBe(true);
    expect(await nodelayCalls(false, 3)).toEqual([]);
  });
});
