// Where a process spent its time, from a V8 .cpuprofile (what `node --cpu-prof` writes):
// self time per function, and self and inclusive time per source file.
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/**
 * @typedef {{ functionName: string, url: string, lineNumber: number }} CallFrame
 * @typedef {{ id: number, callFrame: CallFrame, children?: number[] }} ProfileNode
 * @typedef {{ nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number }} Profile
 * @typedef {{ name: string, ms: number, percentOfBusy: number }} Row
 * @typedef {ReturnType<typeof summarize>} Summary
 */

/**
 * @param {Profile} profile
 * @param {number} [top]
 * @param {{ fromUs: number, toUs: number }} [window] only samples in this span of the monotonic
 *   clock (µs; `process.hrtime` and V8's profiler share CLOCK_MONOTONIC on Linux), so start-up
 *   and shutdown are left out.
 */
export function summarize(profile, top = 25, window) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Every id in samples and children names a node of the same profile.
  const frameOf = (/** @type {number} */ id) => /** @type {ProfileNode} */ (byId.get(id)).callFrame;
  const parent = new Map();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);

  const selfById = new Map();
  let total = 0;
  let at = profile.startTime;
  const inWindow = window !== undefined && windowHasSamples(profile, window);
  // timeDeltas[i] is the time since the previous sample: charge it to sample i's frame.
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = Math.max(0, profile.timeDeltas[i] ?? 0);
    at += profile.timeDeltas[i] ?? 0;
    if (inWindow && (at < window.fromUs || at > window.toUs)) continue;
    selfById.set(profile.samples[i], (selfById.get(profile.samples[i]) ?? 0) + dt);
    total += dt;
  }

  const functions = new Map();
  const filesSelf = new Map();
  const filesInclusive = new Map();
  let idle = 0;
  for (const [id, us] of selfById) {
    const frame = frameOf(id);
    if (frame.functionName === '(idle)') idle += us;
    const key = `${frame.functionName || '(anonymous)'}  ${where(frame)}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
    const file = fileOf(frame);
    filesSelf.set(file, (filesSelf.get(file) ?? 0) + us);
    // Inclusive: charge each file once per sample, however deep it recurses.
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const f = fileOf(frameOf(at));
      if (!seen.has(f)) {
        seen.add(f);
        filesInclusive.set(f, (filesInclusive.get(f) ?? 0) + us);
      }
    }
  }
  const busy = total - idle;
  const rank = (/** @type {Map<string, number>} */ map) =>
    [...map.entries()]
      .filter(([name]) => !name.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, percentOfBusy: busy > 0 ? (100 * us) / busy : 0 }));
  return {
    window: inWindow ? 'workload only' : 'whole process lifetime',
    totalMs: total / 1000,
    idleMs: idle / 1000,
    busyMs: busy / 1000,
    functions: rank(functions),
    filesSelf: rank(filesSelf),
    filesInclusive: rank(filesInclusive).filter((f) => f.name !== '(root)'),
  };
}

/**
 * Guards against clocks that do not line up: then the whole profile is used.
 * @param {Profile} profile
 * @param {{ fromUs: number, toUs: number }} window
 */
function windowHasSamples(profile, window) {
  let at = profile.startTime;
  let n = 0;
  for (const dt of profile.timeDeltas) {
    at += dt;
    if (at >= window.fromUs && at <= window.toUs) n++;
  }
  return n > profile.samples.length / 10;
}

/**
 * The summary as markdown tables.
 * @param {Summary} summary
 */
export function summaryMarkdown(summary) {
  /**
   * @param {string} title
   * @param {Row[]} rows
   */
  const table = (title, rows) => [
    `#### ${title}`,
    '',
    '| ms | % of busy | where |',
    '| ---: | ---: | --- |',
    ...rows.map((r) => `| ${r.ms.toFixed(0)} | ${r.percentOfBusy.toFixed(1)} | \`${r.name}\` |`),
    '',
  ];
  return [
    `Sampled ${summary.totalMs.toFixed(0)} ms (${summary.window}): busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms.`,
    '',
    ...table('Self time by function', summary.functions),
    ...table('Self time by file', summary.filesSelf),
    ...table('Inclusive time by file (time with a frame of that file on the stack)', summary.filesInclusive),
  ].join('\n');
}

/** @param {CallFrame} frame */
function where(frame) {
  const file = fileOf(frame);
  return frame.lineNumber >= 0 && !file.startsWith('(') ? `${file}:${frame.lineNumber + 1}` : file;
}

/**
 * A short file name: repo-relative, `node:` internals as is, V8 pseudo-frames by name.
 * @param {CallFrame} frame
 */
function fileOf(frame) {
  const url = frame.url;
  if (!url) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  let path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (path.startsWith(repo)) path = path.slice(repo.length);
  const nm = path.lastIndexOf('node_modules/');
  return nm >= 0 ? path.slice(nm) : path;
}
