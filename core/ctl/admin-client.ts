/**
 * The HTTP side of `switchyard ctl`: one call to the admin API, its answer parsed, and every way
 * it can fail turned into an exit code scripts can branch on.
 */

/** Exit codes of `switchyard ctl` (docs/ctl.md). */
export const EXIT = {
  ok: 0,
  /** The admin API answered with an error (4xx other than 401/403, or 5xx). */
  apiError: 1,
  /** The command line was wrong (unknown command, bad argument). */
  usage: 2,
  /** The admin API could not be reached, or did not answer in time. */
  unreachable: 3,
  /** The admin API wants a token (401) or refused this one (403). */
  auth: 4,
} as const;

export interface AdminTarget {
  /** Base URL, e.g. `http://127.0.0.1:9090`. */
  base: string;
  /** Bearer token (from `SWITCHYARD_ADMIN_TOKEN`), sent when set. */
  token: string | undefined;
  timeoutMs: number;
}

/** A failed call: what to print on stderr and the exit code. */
export class CtlError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CtlError';
  }
}

/** Calls the admin API; resolves with the parsed JSON body of a 2xx answer. */
export async function callAdmin(
  target: AdminTarget,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<unknown> {
  const url = new URL(path, target.base.endsWith('/') ? target.base : `${target.base}/`);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (target.token) headers.authorization = `Bearer ${target.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(target.timeoutMs),
      redirect: 'manual',
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new CtlError(`cannot reach the admin API at ${target.base}: ${cause}`, EXIT.unreachable);
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {}
  if (response.ok) return parsed;
  // The API's own words: its JSON errors carry `message` (and `code`); anything else as sent.
  const api = parsed as { message?: unknown; code?: unknown } | null;
  const words =
    api !== null && typeof api === 'object' && typeof api.message === 'string'
      ? `${api.message}${typeof api.code === 'string' ? ` (${api.code})` : ''}`
      : text.trim() || response.statusText;
  const exitCode = response.status === 401 || response.status === 403 ? EXIT.auth : EXIT.apiError;
  const hint =
    response.status === 401 && !target.token ? '; set SWITCHYARD_ADMIN_TOKEN to the admin token' : '';
  throw new CtlError(`${method} ${url.pathname}: ${response.status} ${words}${hint}`, exitCode);
}
