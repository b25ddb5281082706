/**
 * Where an operator reaches what a plugin serves (the admin API, the dashboard, metrics):
 * plugins contribute one with `runtime.contribute(ENDPOINTS, endpoint)`, and the CLI's start
 * line lists each under its name (`dashboard: "http://127.0.0.1:9090/"`), so a new user sees
 * where to look.
 */
export const ENDPOINTS = 'start.endpoints';

export interface Endpoint {
  /** The start line's key: `admin`, `dashboard`, `metrics`, ... */
  name: string;
  /** The URL once serving (read after start), or null when not serving. */
  url(): string | null;
}

/** Keys of the start line that an endpoint may not take. */
const RESERVED = new Set([
  'version',
  'workers',
  'scheduling',
  'pids',
  'services',
  'plugins',
  'sessionLimit',
  'msg',
]);

/** The contributed endpoints as start-line fields; a name already taken is prefixed with `url.`. */
export function endpointFields(endpoints: readonly Endpoint[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const e of endpoints) {
    let url: string | null;
    try {
      url = e.url();
    } catch {
      continue; // a plugin's bug must not stop the start line
    }
    if (typeof url !== 'string' || typeof e.name !== 'string') continue;
    const key = RESERVED.has(e.name) || e.name in fields ? `url.${e.name}` : e.name;
    fields[key] = url;
  }
  return fields;
}
