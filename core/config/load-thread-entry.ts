// The config thread (core/config/load-thread.ts says why it is a thread): waits for one file
// name, loads that config and posts the result, or the error, to the thread that asked.
import { parentPort } from 'node:worker_threads';
import { ConfigError } from './errors.js';
import { loadConfigFile } from './load.js';
import { type ThreadReply, toPortable } from './load-thread.js';

parentPort!.once('message', async ({ file }: { file: string }) => {
  let reply: ThreadReply;
  try {
    reply = { ok: true, config: toPortable(await loadConfigFile(file)) };
  } catch (err) {
    reply = errorReply(err);
  }
  try {
    parentPort!.postMessage(reply);
  } catch (err) {
    // A plugin's `check` may leave a value in its options that cannot cross threads.
    parentPort!.postMessage(errorReply(err, 'the loaded config cannot be passed to the proxy: '));
  }
});

function errorReply(err: unknown, prefix = ''): ThreadReply {
  if (err instanceof ConfigError) return { ok: false, issues: err.issues };
  const e = err as { message?: unknown; code?: unknown };
  return {
    ok: false,
    message: prefix + (typeof e?.message === 'string' ? e.message : String(err)),
    ...(typeof e?.code === 'string' && prefix === '' && { code: e.code }),
  };
}
