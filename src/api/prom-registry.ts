import { collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';

/** One gauge read from the database at each scrape: its label sets and values, zeros included. */
export type GaugeSource = {
  name: string;
  help: string;
  labelNames?: readonly string[];
  read: () => Promise<Array<{ labels?: Record<string, string>; value: number }>>;
};

/**
 * A histogram whose buckets the database counts (cumulative, as Prometheus wants them), rather
 * than one fed observation by observation in this process: the tasks it counts may have run
 * before this process started, or on another replica.
 */
export type CountedHistogramSource = {
  name: string;
  help: string;
  /** Upper bounds, in the histogram's unit; `+Inf` is added. */
  buckets: readonly number[];
  read: () => Promise<Array<{ labels: Record<string, string>; buckets: number[]; sum: number; count: number }>>;
};

/**
 * A fresh prom-client registry for one app: the process's default metrics (memory, CPU, event
 * loop lag, GC, handles) plus the given gauges and histograms, each read when scraped. Never the
 * global default registry, so several apps in one process (tests) each have their own.
 */
export function createPromRegistry(sources: { gauges: readonly GaugeSource[]; histograms: readonly CountedHistogramSource[] }): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const source of sources.gauges) {
    new Gauge({
      name: source.name,
      help: source.help,
      labelNames: source.labelNames ?? [],
      registers: [registry],
      async collect() {
        const rows = await source.read();
        this.reset();
        for (const row of rows) {
          if (row.labels) this.set(row.labels, row.value);
          else this.set(row.value);
        }
      },
    });
  }
  for (const source of sources.histograms) registry.registerMetric(countedHistogram(source));
  return registry;
}

function countedHistogram(source: CountedHistogramSource): Metric {
  const metric = {
    name: source.name,
    help: source.help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const rows = await source.read();
      const values = rows.flatMap((row) => [
        ...source.buckets.map((le, i) => ({ metricName: `${source.name}_bucket`, labels: { ...row.labels, le: String(le) }, value: row.buckets[i] ?? 0 })),
        { metricName: `${source.name}_bucket`, labels: { ...row.labels, le: '+Inf' }, value: row.count },
        { metricName: `${source.name}_sum`, labels: row.labels, value: row.sum },
        { metricName: `${source.name}_count`, labels: row.labels, value: row.count },
      ]);
      return { name: source.name, help: source.help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  // prom-client's registry takes any object with its metrics' shape; its types name only its own classes.
  return metric as unknown as Metric;
}
