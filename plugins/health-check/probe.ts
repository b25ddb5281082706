import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { preview, type ReplyMatcher } from './payload.js';
import type { ProbeTarget } from './target.js';

/** What one check does after connecting. */
export interface ProbePlan {
  /** Bytes written once connected (and the TLS handshake is done). */
  send: Buffer | null;
  /** Reply the check waits for; null: connecting (and sending) is enough. */
  expect: ReplyMatcher | null;
  /** ms for the whole check. */
  timeout: number;
}

/** Receives null when the check passed, or why it failed. */
export type ProbeDone = (error: string | null) => void;

/**
 * Bytes to write first once the TCP connection is up — before a TLS handshake and the check's
 * own `send` (a PROXY protocol header); null for none. Gets the connected TCP socket (its
 * local and remote addresses).
 */
export type ProbeStart = (socket: Socket) => Buffer | null;

/** Bytes of reply kept while looking for a match (HAProxy's check buffer is 16 KiB too). */
export const MAX_REPLY = 16 * 1024;

type Phase = 'connect' | 'tls handshake' | 'send' | 'reply';

/**
 * Runs one check: TCP connect (or TLS handshake), optional send, optional expect. Calls `done`
 * exactly once unless aborted; the socket is destroyed on every outcome. Never throws.
 * Returns an abort function (service stop, backend removed) that ends it without calling back.
 */
export function probe(
  target: ProbeTarget,
  plan: ProbePlan,
  done: ProbeDone,
  start: ProbeStart | null = null,
): () => void {
  let finished = false;
  let socket: Socket | null = null;
  let phase: Phase = 'connect';
  let reply: Buffer | null = null;

  const end = (error: string | null, report: boolean) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket?.destroy();
    if (report) done(error);
  };
  const fail = (error: string) => end(error, true);
  const timer = setTimeout(() => {
    const got = reply === null ? '' : `; got ${preview(reply)}`;
    fail(`timeout after ${plan.timeout}ms during ${phase}${got}`);
  }, plan.timeout);
  timer.unref();

  const onReady = () => {
    if (plan.send !== null) {
      phase = 'send';
      socket!.write(plan.send, (err) => {
        if (err) fail(`send: ${err.message}`);
        else if (plan.expect === null) end(null, true);
        else phase = 'reply';
      });
    }
    if (plan.expect !== null) {
      if (plan.send === null) phase = 'reply';
      socket!.on('data', onData);
    } else if (plan.send === null) {
      end(null, true);
    }
  };
  const onData = (chunk: Buffer) => {
    phase = 'reply';
    reply = reply === null ? chunk : Buffer.concat([reply, chunk]);
    if (plan.expect!.matches(reply)) end(null, true);
    else if (reply.length >= MAX_REPLY)
      fail(`no match for ${plan.expect!.description} in the first ${reply.length} bytes of the reply`);
  };

  if (target.error !== null) {
    // Reported asynchronously like any other outcome, so callers see one code path.
    queueMicrotask(() => fail(target.error!));
    return () => end(null, false);
  }
  const onError = (err: Error) => fail(`${phase}: ${err.message}`);
  const onClose = () => {
    if (phase !== 'reply') fail(`connection closed during ${phase}`);
    else if (reply === null) fail(`closed without a reply (expected ${plan.expect!.description})`);
    else fail(`closed before ${plan.expect!.description} arrived; got ${preview(reply)}`);
  };
  /** TCP is up: write the start bytes on the raw connection, then TLS over it, or the check. */
  const onConnect = () => {
    const raw = socket!;
    let first: Buffer | null;
    try {
      first = start!(raw);
    } catch (err) {
      fail(`${phase}: ${(err as Error).message}`);
      return;
    }
    if (first !== null) raw.write(first);
    if (target.tls === null) {
      onReady();
      return;
    }
    phase = 'tls handshake';
    try {
      socket = tlsConnect({ ...target.tls, socket: raw });
    } catch (err) {
      fail(`${phase}: ${(err as Error).message}`);
      return;
    }
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.once('secureConnect', onReady);
  };
  try {
    if (start !== null) {
      socket = netConnect({ host: target.host, port: target.port, noDelay: true });
      socket.once('connect', onConnect);
    } else if (target.tls !== null) {
      socket = tlsConnect({ ...target.tls, host: target.host, port: target.port });
      socket.once('connect', () => {
        phase = 'tls handshake';
      });
      socket.once('secureConnect', onReady);
    } else {
      socket = netConnect({ host: target.host, port: target.port, noDelay: true });
      socket.once('connect', onReady);
    }
  } catch (err) {
    // e.g. a malformed PEM rejected by tls.connect before any I/O
    queueMicrotask(() => fail(`${phase}: ${(err as Error).message}`));
    return () => end(null, false);
  }
  socket.on('error', onError);
  socket.on('close', onClose);
  return () => end(null, false);
}
