import type { Registry } from 'prom-client';

/**
 * `registry.metrics()`, except that every metric fails alone: a collector that throws (e.g.
 * `process.memoryUsage()` with EMFILE at the fd limit — exactly when metrics matter most)
 * leaves out that metric for this scrape instead of failing the whole answer. `onError` is
 * told which metric failed.
 */
export async function scrape(
  registries: readonly Registry[],
  onError: (metric: string, err: unknown) => void,
): Promise<string> {
  const parts = await Promise.all(
    registries.flatMap((registry) =>
      registry.getMetricsAsArray().map(async ({ name }) => {
        try {
          return await registry.getSingleMetricAsString(name);
        } catch (err) {
          onError(name, err);
          return undefined;
        }
      }),
    ),
  );
  return `${parts.filter((p) => p !== undefined).join('\n\n')}\n`;
}
