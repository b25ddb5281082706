import { once } from 'node:events';
import { resolve } from 'node:path';
import { destination } from 'pino';

type Destination = ReturnType<typeof destination>;

interface Shared {
  dest: Destination;
  users: number;
  /** Settles once the file is open (or failed to open); every user waits for it. */
  ready: Promise<void>;
}

/** One open file per path, shared by the services that log to it, so their lines never interleave mid-line. */
const open = new Map<string, Shared>();

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
    const dest = destination({ dest: path, sync: false, mkdir: true });
    const ready = Promise.race([
      once(dest, 'ready'),
      once(dest, 'error').then(([err]) => {
        throw err;
      }),
    ]).then(() => {
      dest.on('error', onError);
    });
    shared = { dest, users: 1, ready };
    open.set(path, shared);
  }
  try {
    await shared.ready;
  } catch (err) {
    if (--shared.users === 0) open.delete(path);
    const e = err as NodeJS.ErrnoException;
    throw new Error(`access-log cannot open ${path}: ${e.code ?? e.message}`);
  }
  return shared.dest;
}

/** Releases a destination; the last user flushes and closes the file. */
export async function releaseDestination(file: string): Promise<void> {
  const path = resolve(file);
  const shared = open.get(path);
  if (!shared || --shared.users > 0) return;
  open.delete(path);
  const closed = once(shared.dest, 'close');
  shared.dest.end();
  await closed;
}
