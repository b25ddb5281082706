// Medians per variant over saved runs. Usage: node bench/dispatch/median.js [result.json ...]
// (default: every file in bench/dispatch/results/).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatTable, median, RESULT_COLUMNS } from './table.js';

const dir = new URL('./results/', import.meta.url).pathname;
const files =
  process.argv.length > 2
    ? process.argv.slice(2)
    : readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => join(dir, f));
const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')));
const byVariant = new Map();
for (const run of runs) {
  for (const row of run.rows) {
    if (!byVariant.has(row.variant)) byVariant.set(row.variant, []);
    byVariant.get(row.variant).push(row);
  }
}
const rows = [...byVariant].map(([variant, list]) => {
  const out = { variant: `${variant} (n=${list.length})` };
  for (const c of RESULT_COLUMNS.slice(1)) {
    if (c.key === 'split') out.split = list.map((r) => r.split ?? '-').join(' ');
    else out[c.key] = median(list.map((r) => r[c.key]));
  }
  return out;
});
console.log(`medians over ${runs.length} runs`);
console.log(formatTable(RESULT_COLUMNS, rows));
