import type { Runtime } from '../../plugin-sdk/index.js';
import type { AdminApi } from './index.js';

/** A response with its JSON body parsed (undefined when the body is empty or not JSON). */
export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export interface CallOptions {
  /** Sent as JSON with `Content-Type: application/json`. */
  json?: unknown;
  /** Sent as is (with `headers` choosing the content type). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /** Overrides the client's token; null sends none. */
  token?: string | null;
}

export type AdminCall = (method: string, path: string, options?: CallOptions) => Promise<ApiResponse>;

/** A fetch-based caller for the admin API of a running runtime (used by the plugins' tests). */
export function adminClient(runtime: Runtime, token?: string): AdminCall & { base: string } {
  const address = runtime.use<AdminApi>('admin-api')?.address();
  if (!address) throw new Error('admin-api is not listening');
  const base = `http://${address}`;
  const call: AdminCall = async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    const bearer = options.token === undefined ? token : options.token;
    if (bearer !== undefined && bearer !== null) headers.authorization = `Bearer ${bearer}`;
    let body: string | Buffer | undefined;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    } else if (options.raw !== undefined) {
      body = options.raw;
    }
    const res = await fetch(base + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
  return Object.assign(call, { base });
}
