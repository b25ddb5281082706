import { once } from 'node:events';
import { open as openFile } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { destination } from 'pino';

type Destination = ReturnType<typeof destination>;

interface Shared {
  users: number;
  /** Settles once the file is open (or failed to open); every user waits for it. */
  dest: Promise<Destination>;
}

/** One open file per path, shared by the services that log to it, so their lines never interleave mid-line. */
const open = new Map<string, Shared>();

/**
 * Opens the file (append, creating its folder) before any destination exists: a destination
 * that never opened would make pino's exit handler throw ("sonic boom is not ready yet").
 */
async function openDestination(path: string, onError: (err: Error) => void): Promise<Destination> {
  await mkdir(dirname(path), { recursive: true });
  const fd = await promisify(openFile)(path, 'a');
  const dest = destination({ fd, sync: false });
  dest.on('error', onError);
  return dest;
}

/**
 * Opens (or shares) an asynchronous pino destination on `file` and waits until it is usable, so
 * a bad path fails the service's start with a clear message instead of a later 'error' event.
 */
export async function acquireDestination(file: string, onError: (err: Error) => void): Promise<Destination> {
  const path = resolve(file);
  let shared = open.get(path);
  if (shared) {
    shared.users++;
  } else {
    shared = { users: 1, dest: openDestination(path, onError) };
    open.set(path, shared);
  }
  try {
    return await shared.dest;
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
  const dest = await shared.dest;
  const closed = once(dest, 'close');
  dest.end();
  await closed;
}
