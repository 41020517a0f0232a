/**
 * `/api/metrics` as the API process collects it from a real engine on a real nats-server: each engine's
 * active executions, activation latency and redeliveries by instance, and the backlog of the durable
 * consumers only (a short-lived consumer is no queue and must not become a series).
 */
import assert from "node:assert/strict";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { collectEngineMetrics } from "../../server/event_metrics.ts";
import { MetricsRegistry } from "../../server/metrics.ts";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { scriptedRuntime, startEngineHarness } from "../support/engine.ts";

const PROJECT = {
  "compozy.yaml": "name: metrics\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: main
tools:
  - id: echo
    execute: ./t.ts
tasks:
  - id: one
    use: tool(id=echo)
    with: { v: 1 }
`,
  "t.ts": "export default (input: unknown) => input;\n",
};

Deno.test("engine metrics: per-engine figures and durable consumers only", async () => {
  const h = await startEngineHarness(PROJECT);
  const runtime = scriptedRuntime(h.bus, { echo: (input) => input });
  const registry = new MetricsRegistry();
  const metrics = collectEngineMetrics(h.nc, registry);
  // A read consumer of the kind a history query once created, alive during the scrape.
  const ephemeral = await jetstream(h.nc).consumers.get(STREAMS.events, {
    filter_subjects: "compozy.nobody.*.evts.*.*",
    deliver_policy: DeliverPolicy.All,
  });
  try {
    const { execId } = await h.engine.client.trigger("main", {});
    assert.equal((await h.engine.client.waitForEnd(execId, 30_000)).status, "SUCCESS");
    const text = await registry.render();
    assert.match(text, /^compozy_engine_active_executions\{instance="engine-test"\} 0$/m);
    assert.match(text, /^compozy_engine_activation_duration_seconds_count\{instance="engine-test"\} 1$/m);
    assert.match(text, /^compozy_engine_redeliveries_total\{instance="engine-test"\} 0$/m);
    assert.match(text, /^compozy_consumer_pending\{stream="EVENTS",consumer="compozy-state"\} \d+$/m);
    assert.match(text, /consumer="compozy-workflow-executor"/);
    const consumers = [...text.matchAll(/^compozy_consumer_pending\{[^}]*consumer="([^"]+)"/gm)].map((m) =>
      m[1]
    );
    assert.ok(
      !consumers.includes((await ephemeral.info(true)).name),
      `an ephemeral consumer is listed: ${consumers}`,
    );
  } finally {
    await ephemeral.delete();
    metrics.stop();
    runtime.stop();
    await h.close();
  }
});
