#!/usr/bin/env node
// Where a held connection's JS heap goes: heap snapshots of the idle proxy and of the proxy
// holding N idle connections (both after a full GC), diffed by object type, per connection.
//   node bench/concurrency/heap-breakdown.js [--proxy switchyard|naive] [--connections 2000] [--top 20]
//     [--idle-timeout <duration>]  (Switchyard's idle_timeout; the core default otherwise)
//     [--node <path>]              (the Node binary the proxy runs on; default: this one)
// `npm run build` first. Snapshots are written to a scratch directory and removed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { withCleanup } from '../lib/cleanup.js';
import { request, waitForMessage } from '../lib/ipc.js';
import { nodeBinary } from '../lib/node-binary.js';
import { kill, start } from '../lib/procs.js';
import { startBackends } from './backends.js';
import { fmt } from './format.js';
import { probe, startNaive, startSwitchyard } from './proxies.js';

const USAGE =
  'usage: heap-breakdown.js [--proxy switchyard|naive] [--connections 1..9000] [--top n] [--idle-timeout d] [--node path]';
const { values } = parseArgs({
  options: {
    proxy: { type: 'string', default: 'switchyard' },
    connections: { type: 'string', default: '2000' },
    top: { type: 'string', default: '20' },
    'idle-timeout': { type: 'string' },
    node: { type: 'string' },
  },
});
const kind = values.proxy;
const count = Number(values.connections);
const top = Number(values.top);
if (!['switchyard', 'naive'].includes(kind) || !Number.isInteger(count) || count < 1 || count > 9000) {
  console.error(USAGE);
  process.exit(2);
}
/** @type {import('../lib/node-binary.js').NodeBinary} */
let node;
try {
  node = nodeBinary(values.node);
} catch (err) {
  console.error(/** @type {Error} */ (err).message);
  process.exit(2);
}

/**
 * Self size by "type:name" from a V8 heap snapshot file.
 * @param {string} file
 */
function aggregate(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const { nodes, strings } = snap;
  /** @type {Map<string, { size: number, count: number }>} */
  const by = new Map();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    // Strings, numbers and code are keyed by type only: their names are contents.
    const name = ['object', 'closure', 'native', 'hidden', 'array', 'object shape', 'synthetic'].includes(
      type,
    )
      ? strings[nodes[i + iName]]
      : '';
    const key = `${type}:${name.length > 60 ? `${name.slice(0, 57)}...` : name}`;
    const entry = by.get(key) ?? { size: 0, count: 0 };
    entry.size += nodes[i + iSize];
    entry.count++;
    by.set(key, entry);
  }
  return by;
}

async function main() {
  await withCleanup(async (dir) => {
    const hosts = ['127.0.0.1', '127.0.0.2'];
    const backends = await startBackends(2, 15_000);
    const how = { node: node.path, hosts, backendPorts: backends.ports, timeoutMs: 30_000 };
    const proxy =
      kind === 'switchyard'
        ? await startSwitchyard({ ...how, dir, idleTimeout: values['idle-timeout'] })
        : await startNaive(how);
    const before = join(dir, 'before.heapsnapshot');
    const after = join(dir, 'after.heapsnapshot');
    await probe(proxy, { gc: true, heapSnapshot: before, timeoutMs: 60_000 });

    const clientScript = fileURLToPath(new URL('load-client.js', import.meta.url));
    const client = start(process.execPath, [clientScript], { name: 'load client', ipc: true });
    await waitForMessage(client, 'ready', 15_000);
    const ramped = await request(
      client,
      { type: 'ramp', targets: proxy.addresses, count, rate: 1000, maxPending: 200, timeoutMs: 60_000 },
      'ramped',
      75_000,
    );
    // Until the proxy holds every connection end to end, bounded.
    for (let i = 0; i < 100; i++) {
      if ((await probe(proxy)).active === ramped.held && (await backends.connections()) === ramped.held)
        break;
      await sleep(200);
    }
    const held = (await probe(proxy)).active;
    await probe(proxy, { gc: true, heapSnapshot: after, timeoutMs: 60_000 });
    await kill(proxy.proc);
    await kill(client);

    const a = aggregate(before);
    const b = aggregate(after);
    const rows = [...b.entries()]
      .map(([key, v]) => {
        const was = a.get(key) ?? { size: 0, count: 0 };
        return { key, bytes: (v.size - was.size) / held, objects: (v.count - was.count) / held };
      })
      .filter((r) => Math.abs(r.bytes) >= 1)
      .sort((x, y) => y.bytes - x.bytes);
    // Node reports its C++ socket wraps as synthetic/native nodes: outside the JS heap.
    /** @typedef {(typeof rows)[number]} Row */
    const isNative = (/** @type {Row} */ r) => r.key.startsWith('synthetic:') || r.key.startsWith('native:');
    const sum = (/** @type {Row[]} */ list) => Math.round(list.reduce((s, r) => s + r.bytes, 0));
    console.log(
      `${kind} on Node ${node.version}, 1 round: ${fmt(held)} idle proxied connections; per connection: JS heap ${fmt(sum(rows.filter((r) => !isNative(r))))} bytes, ` +
        `native objects Node reports ${fmt(sum(rows.filter(isNative)))} bytes`,
    );
    console.log(
      `\nJS heap growth per connection by object type (${kind} on Node ${node.version}, 1 round)\n\n| bytes/conn | objects/conn | V8 type:name |\n|---:|---:|---|`,
    );
    for (const r of rows.slice(0, top))
      console.log(`| ${r.bytes.toFixed(0)} | ${r.objects.toFixed(2)} | \`${r.key}\` |`);
  });
}

main().catch((err) => {
  console.error(`heap breakdown failed: ${err instanceof Error ? err.stack : err}`);
  process.exit(1);
});
