import type { Metric, Registry } from 'prom-client';

export type Labels = Record<string, string | number>;

/** Adds one series; `metricName` for the `_bucket` / `_sum` / `_count` lines of a histogram. */
export type Emit = (labels: Labels, value: number, metricName?: string) => void;

export interface ScrapedMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  /** Called on every scrape: emits every series from the current state. */
  collect(emit: Emit): void;
}

interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

/**
 * Registers a metric whose series are rebuilt from core state on every scrape, in the shape
 * prom-client's `Registry` formats (the `get()` of its metric classes). Not a prom-client
 * `Counter`/`Gauge` with `collect()` + `reset()` + `inc()`: those validate and hash the labels
 * of every series on every scrape, a third of the scrape time with many backends, for state
 * that is rebuilt from scratch each time anyway.
 */
export function registerScraped(registry: Registry, metric: ScrapedMetric): void {
  const { name, help, type } = metric;
  const get = async () => {
    const values: Sample[] = [];
    metric.collect((labels, value, metricName) => {
      values.push(metricName === undefined ? { labels, value } : { labels, value, metricName });
    });
    return { name, help, type, aggregator: 'sum', values };
  };
  registry.registerMetric({ name, help, type, aggregator: 'sum', get } as unknown as Metric);
}
