// Every process the bench starts, each in its own process group, killed as a group at the end
// (a cluster primary's workers share its group), on normal exit, error, Ctrl-C or SIGTERM.
import { spawn } from 'node:child_process';

const groups = new Set();

/** spawn() in a new process group that `killAll` will kill. */
export function spawnTracked(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options, detached: true });
  groups.add(child.pid);
  child.once('exit', () => groups.delete(child.pid));
  return child;
}

/** SIGKILL to the group of `child` (primary and workers together). */
export function killTree(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
  groups.delete(child.pid);
}

export function killAll() {
  for (const pid of groups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  groups.clear();
}

process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Resolves with the first stdout line matching `pattern` (its match), rejects on exit or timeout. */
export function waitForLine(child, pattern, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let stderr = '';
    const timer = setTimeout(
      () => done(new Error(`timed out waiting for ${pattern}: ${stderr.trim()}`)),
      timeoutMs,
    );
    const onData = (chunk) => {
      buffer += chunk;
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const match = pattern.exec(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (match !== null) return done(null, match);
        nl = buffer.indexOf('\n');
      }
    };
    const onErr = (chunk) => {
      stderr += chunk;
    };
    const onExit = (code) => done(new Error(`exited with ${code} before ${pattern}: ${stderr.trim()}`));
    function done(err, match) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stderr.off('data', onErr);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(match);
    }
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.stderr.on('data', onErr);
    child.once('exit', onExit);
  });
}
