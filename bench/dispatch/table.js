// Plain-text tables for the terminal and the report.

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (typeof v !== 'number') return String(v);
  return digits === 0 ? String(Math.round(v)) : v.toFixed(digits);
}

/** @param {{ title: string, key: string, digits?: number }[]} columns */
export function formatTable(columns, rows) {
  const cells = rows.map((r) => columns.map((c) => fmt(r[c.key], c.digits ?? 0)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i].length)));
  const line = (values) =>
    values.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(columns.map((c) => c.title)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join(
    '\n',
  );
}

export const RESULT_COLUMNS = [
  { title: 'variant', key: 'variant' },
  { title: 'churn conn/s', key: 'churnRps' },
  { title: 'persistent req/s', key: 'persistentRps' },
  { title: 'CPU s/1k conn', key: 'cpuPer1kConn', digits: 3 },
  { title: 'primary CPU s/1k conn', key: 'primaryCpuPer1kConn', digits: 3 },
  { title: 'CPU s/100k req', key: 'cpuPer100kReq', digits: 2 },
  { title: 'primary peak fds', key: 'peakFds' },
  { title: 'worker CPU split', key: 'split' },
];

export const GUARD_COLUMNS = [
  { title: 'primary nofile', key: 'limit' },
  { title: 'case', key: 'case' },
  { title: 'served', key: 'ok' },
  { title: 'reset', key: 'reset' },
  { title: 'closed w/o reply', key: 'closedWithoutReply' },
  { title: 'reset before connect', key: 'connectError' },
  { title: 'timeout', key: 'timeout' },
  { title: 'refused (counted)', key: 'refused' },
  { title: 'accept errors', key: 'failed' },
  { title: 'peak fds', key: 'peakFds' },
  { title: 'serves after', key: 'servedAfter' },
];

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}
