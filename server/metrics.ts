/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text exposition
 * format (version 0.0.4). Collectors run before each render, for values read on demand (queue depths).
 *
 * @module
 */

type Labels = Record<string, string>;

interface Metric {
  render(): string[];
}

/** Default latency buckets in seconds, from 1 ms to 60 s. */
export const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();
  private readonly collectors: Array<() => Promise<void> | void> = [];

  counter(name: string, help: string): Counter {
    return this.register(name, new Counter(name, help));
  }

  gauge(name: string, help: string): Gauge {
    return this.register(name, new Gauge(name, help));
  }

  histogram(name: string, help: string, buckets: number[] = LATENCY_BUCKETS): Histogram {
    return this.register(name, new Histogram(name, help, buckets));
  }

  /** Runs `collect` before every render; a collector that throws is skipped for that render. */
  onCollect(collect: () => Promise<void> | void): void {
    this.collectors.push(collect);
  }

  async render(): Promise<string> {
    await Promise.all(this.collectors.map(async (collect) => {
      try {
        await collect();
      } catch {
        // A metric that cannot be read now (e.g. NATS is down) keeps its last value.
      }
    }));
    return [...this.metrics.values()].flatMap((m) => m.render()).join("\n") + "\n";
  }

  private register<M extends Metric>(name: string, metric: M): M {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`Invalid metric name '${name}'`);
    const existing = this.metrics.get(name);
    if (existing) {
      if (existing.constructor !== metric.constructor) {
        throw new Error(`Metric '${name}' is already registered as another type`);
      }
      return existing as M;
    }
    this.metrics.set(name, metric);
    return metric;
  }
}

abstract class LabelledMetric implements Metric {
  protected readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string, private readonly type: string) {}

  /** Drops every series, for a collector that rebuilds them all (series of things that went away go too). */
  clear(): void {
    this.values.clear();
  }

  protected slot(labels: Labels): { labels: Labels; value: number } {
    const key = labelKey(labels);
    let slot = this.values.get(key);
    if (!slot) {
      slot = { labels, value: 0 };
      this.values.set(key, slot);
    }
    return slot;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, value } of this.values.values()) {
      lines.push(`${this.name}${formatLabels(labels)} ${value}`);
    }
    return lines;
  }
}

export class Counter extends LabelledMetric {
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }

  inc(labels: Labels = {}, by = 1): void {
    this.slot(labels).value += by;
  }
}

export class Gauge extends LabelledMetric {
  constructor(name: string, help: string) {
    super(name, help, "gauge");
  }

  set(labels: Labels, value: number): void {
    this.slot(labels).value = value;
  }

  add(labels: Labels, by: number): void {
    this.slot(labels).value += by;
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();

  constructor(readonly name: string, readonly help: string, private readonly buckets: number[]) {
    if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1])) {
      throw new Error(`Histogram '${name}' buckets must increase: ${buckets.join(", ")}`);
    }
  }

  observe(labels: Labels, value: number): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  /** Sets a whole series measured elsewhere (cumulative counts per bucket, as `observe` keeps them). */
  setSeries(labels: Labels, series: { counts: number[]; sum: number; count: number }): void {
    if (series.counts.length !== this.buckets.length) {
      throw new Error(
        `Histogram '${this.name}' has ${this.buckets.length} buckets, got ${series.counts.length}`,
      );
    }
    this.series.set(labelKey(labels), {
      labels,
      counts: [...series.counts],
      sum: series.sum,
      count: series.count,
    });
  }

  clear(): void {
    this.series.clear();
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((le, i) => {
        lines.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: String(le) })} ${s.counts[i]}`);
      });
      lines.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${formatLabels(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${formatLabels(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

function labelKey(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(",");
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  const body = entries.map(([k, v]) =>
    `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  )
    .join(",");
  return `{${body}}`;
}
