import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { destination } from 'pino';

type Destination = ReturnType<typeof destination>;

interface Shared {
  users: number;
  /** Settles once the file is open (or failed to open); every user waits for it. */
  ready: Promise<Destination>;
}

/** One open file per path, shared by the services that log to it, so their lines never interleave mid-line. */
const open = new Map<string, Shared>();

/**
 * Opens the file here, then hands the descriptor to an asynchronous pino destination. A bad
 * path fails the service's start with a clear message instead of a later 'error' event, and
 * no destination exists for a file that never opened: pino flushes every asynchronous
 * destination synchronously at process exit, which throws for one still waiting for its file.
 */
async function openDestination(path: string, onError: (err: Error) => void): Promise<Destination> {
  await mkdir(dirname(path), { recursive: true });
  const fd = openSync(path, 'a');
  try {
    const dest = destination({ fd, sync: false });
    dest.on('error', onError);
    return dest;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Opens (or shares) the destination of `file`, one per path. */
export async function acquireDestination(file: string, onError: (err: Error) => void): Promise<Destination> {
  const path = resolve(file);
  let shared = open.get(path);
  if (shared) {
    shared.users++;
  } else {
    shared = { users: 1, ready: openDestination(path, onError) };
    open.set(path, shared);
  }
  try {
    return await shared.ready;
  } catch (err) {
    if (--shared.users === 0) open.delete(path);
    const e = err as NodeJS.ErrnoException;
    throw new Error(`access-log cannot open ${path}: ${e.code ?? e.message}`);
  }
}

/** Releases a destination; the last user flushes and closes the file. */
export async function releaseDestination(file: string): Promise<void> {
  const path = resolve(file);
  const shared = open.get(path);
  if (!shared || --shared.users > 0) return;
  open.delete(path);
  const dest = await shared.ready;
  const closed = once(dest, 'close');
  dest.end();
  await closed;
}
