import type { Registry } from 'prom-client';

/**
 * `registry.metrics()` for several registries, except that every metric fails alone: a
 * collector that throws (e.g. `process.memoryUsage()` with EMFILE at the fd limit — exactly
 * when metrics matter most) leaves out that metric for this scrape instead of failing the whole
 * answer. `onError` is told which metric failed. Metrics named in `last` are rendered after the
 * others, so an error counter already includes the failures of the same scrape.
 */
export async function scrape(
  registries: readonly Registry[],
  onError: (metric: string, err: unknown) => void,
  last: ReadonlySet<string> = new Set(),
): Promise<string> {
  const render = async (registry: Registry, name: string) => {
    try {
      return await registry.getSingleMetricAsString(name);
    } catch (err) {
      onError(name, err);
      return undefined;
    }
  };
  const first: Array<Promise<string | undefined>> = [];
  const after: Array<[Registry, string]> = [];
  for (const registry of registries) {
    for (const { name } of registry.getMetricsAsArray()) {
      if (last.has(name)) after.push([registry, name]);
      else first.push(render(registry, name));
    }
  }
  const parts = await Promise.all(first);
  for (const [registry, name] of after) parts.push(await render(registry, name));
  return `${parts.filter((p) => p !== undefined).join('\n\n')}\n`;
}
