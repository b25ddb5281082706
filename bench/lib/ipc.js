// Talking to a child over its IPC channel (a child started with `ipc: true`): requests matched
// to their replies by id, and one-off messages such as 'ready'.
import { tail } from './procs.js';

let lastId = 0;

/**
 * Sends `message` with a fresh `id` and resolves with the reply of type `replyType` that carries
 * the same id (a late reply to an earlier, timed-out request is never taken for this one);
 * rejects when the child exits first or after `timeoutMs`.
 * @param {import('./procs.js').Proc} proc
 * @param {{ type: string, [key: string]: unknown }} message
 * @param {string} replyType
 * @param {number} timeoutMs
 * @returns {Promise<any>}
 */
export function request(proc, message, replyType, timeoutMs) {
  const id = ++lastId;
  return new Promise((resolve, reject) => {
    /**
     * @param {(value: any) => void} fn
     * @param {unknown} value
     */
    const done = (fn, value) => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      proc.child.off('exit', onExit);
      fn(value);
    };
    /** @param {any} reply */
    const onMessage = (reply) => {
      if (reply?.type === replyType && reply.id === id) done(resolve, reply);
    };
    const onExit = () => done(reject, new Error(`${proc.name} exited\n${tail(proc.stderr || proc.stdout)}`));
    const timer = setTimeout(
      () => done(reject, new Error(`${proc.name}: no "${replyType}" reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    proc.child.on('message', onMessage);
    proc.child.once('exit', onExit);
    if (proc.ended) {
      onExit();
      return;
    }
    proc.child.send({ ...message, id }, (err) => {
      if (err) done(reject, new Error(`${proc.name}: cannot send ${message.type}: ${err.message}`));
    });
  });
}

/**
 * The next message of `type` the child sends on its own; rejects when the child exits first or
 * after `timeoutMs`.
 * @param {import('./procs.js').Proc} proc
 * @param {string} type
 * @param {number} timeoutMs
 * @returns {Promise<any>}
 */
export function waitForMessage(proc, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    /**
     * @param {(value: any) => void} fn
     * @param {unknown} value
     */
    const done = (fn, value) => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      proc.child.off('exit', onExit);
      fn(value);
    };
    /** @param {any} msg */
    const onMessage = (msg) => {
      if (msg?.type === type) done(resolve, msg);
    };
    const onExit = () =>
      done(reject, new Error(`${proc.name} exited before "${type}"\n${tail(proc.stderr || proc.stdout)}`));
    const timer = setTimeout(
      () =>
        done(reject, new Error(`${proc.name}: no "${type}" within ${timeoutMs} ms\n${tail(proc.stderr)}`)),
      timeoutMs,
    );
    proc.child.on('message', onMessage);
    proc.child.once('exit', onExit);
    if (proc.ended) onExit();
  });
}
