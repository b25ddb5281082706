import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { AdminRoute } from '../../plugin-sdk/index.js';
import { forceDisconnectRoutes } from '../force-disconnect/routes.js';
import type { AdminContext } from './context.js';
import { backendRoutes } from './routes/backends.js';
import { healthRoutes } from './routes/health.js';
import { legacyRoutes } from './routes/legacy.js';
import { sessionRoutes } from './routes/sessions.js';
import { workerRoutes } from './routes/workers.js';

type Schema = { properties?: Record<string, unknown>; $ref?: string; required?: string[] };

/** openapi.yaml must describe exactly the routes served, with the same query and body fields. */
describe('openapi.yaml', () => {
  it('matches the routes, their query parameters and their body fields', async () => {
    const doc = parse(await readFile(new URL('./openapi.yaml', import.meta.url), 'utf8'));
    const deref = <T>(node: T & { $ref?: string }): T => {
      if (node.$ref === undefined) return node;
      return node.$ref
        .slice(2)
        .split('/')
        .reduce((n: any, k) => n[k], doc) as T;
    };
    const ctx = {} as AdminContext;
    const fd = { set: () => ({}), state: () => ({}) } as any;
    const routes: AdminRoute[] = [
      ...healthRoutes(ctx),
      ...backendRoutes(ctx),
      ...legacyRoutes(ctx),
      ...sessionRoutes(ctx),
      ...workerRoutes(ctx),
      ...forceDisconnectRoutes(fd),
    ];

    const served = routes.map((r) => `${String(r.method)} ${r.url.replace(/:(\w+)/g, '{$1}')}`).sort();
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, ops]) =>
        Object.keys(ops)
          .filter((k) => k !== 'parameters')
          .map((m) => `${m.toUpperCase()} ${path}`),
      )
      .sort();
    expect(documented).toEqual(served);

    for (const route of routes) {
      const path = route.url.replace(/:(\w+)/g, '{$1}');
      const item = doc.paths[path];
      const op = item[String(route.method).toLowerCase()];
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map(deref) as Array<{
        name: string;
        in: string;
      }>;
      const schema = (route.schema ?? {}) as { querystring?: Schema; body?: Schema };
      const where = `${String(route.method)} ${path}`;
      expect(
        params
          .filter((p) => p.in === 'query')
          .map((p) => p.name)
          .sort(),
        where,
      ).toEqual(Object.keys(schema.querystring?.properties ?? {}).sort());
      const body = op.requestBody?.content?.['application/json']?.schema;
      expect(Object.keys(body ? ((deref(body) as Schema).properties ?? {}) : {}).sort(), where).toEqual(
        Object.keys(schema.body?.properties ?? {}).sort(),
      );
      // A route that needs the token says so.
      const mutating = route.mutating ?? String(route.method) !== 'GET';
      const security = (op.security ?? doc.security) as Array<Record<string, unknown>>;
      expect(
        security.some((s) => Object.keys(s).length === 0),
        `${where} open`,
      ).toBe(!mutating);
    }
  });
});
