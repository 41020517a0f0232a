/** The Prometheus text the metrics registry renders: types, labels, escaping, histogram buckets. */
import assert from "node:assert/strict";
import { MetricsRegistry } from "../../server/metrics.ts";

Deno.test("metrics registry renders the Prometheus text format", async (t) => {
  await t.step("counters and gauges with labels, values escaped", async () => {
    const registry = new MetricsRegistry();
    registry.counter("jobs_total", "Jobs").inc({ path: 'a"b\\c' }, 2);
    registry.gauge("depth", "Depth").set({ stream: "X" }, 7);
    const text = await registry.render();
    assert.match(
      text,
      /^# HELP jobs_total Jobs\n# TYPE jobs_total counter\njobs_total\{path="a\\"b\\\\c"\} 2$/m,
    );
    assert.match(text, /^depth\{stream="X"\} 7$/m);
  });
  await t.step("histograms are cumulative with +Inf, sum and count", async () => {
    const registry = new MetricsRegistry();
    const h = registry.histogram("latency_seconds", "Latency", [0.1, 1]);
    for (const v of [0.05, 0.5, 5]) h.observe({ route: "/x" }, v);
    const text = await registry.render();
    assert.match(text, /latency_seconds_bucket\{route="\/x",le="0.1"\} 1/);
    assert.match(text, /latency_seconds_bucket\{route="\/x",le="1"\} 2/);
    assert.match(text, /latency_seconds_bucket\{route="\/x",le="\+Inf"\} 3/);
    assert.match(text, /latency_seconds_sum\{route="\/x"\} 5.55/);
    assert.match(text, /latency_seconds_count\{route="\/x"\} 3/);
  });
  await t.step("the same name twice is one metric; another type under it is refused", () => {
    const registry = new MetricsRegistry();
    assert.equal(registry.counter("c", "C"), registry.counter("c", "C"));
    assert.throws(() => registry.gauge("c", "C"), /already registered/);
    assert.throws(() => registry.counter("bad name", "x"), /Invalid metric name/);
  });
  await t.step("a collector that fails keeps the last value and does not fail the scrape", async () => {
    const registry = new MetricsRegistry();
    const g = registry.gauge("q", "Q");
    let fail = false;
    registry.onCollect(() => {
      if (fail) throw new Error("NATS down");
      g.set({}, 3);
    });
    await registry.render();
    fail = true;
    assert.match(await registry.render(), /^q 3$/m);
  });
});
