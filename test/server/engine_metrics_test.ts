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
import { create } from "@bufbuild/protobuf";
import {
  TaskExecutionSuccessSchema,
  WorkflowExecuteSchema,
  WorkflowExecutionStartedSchema,
} from "../../pkg/pb/mod.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { jsonBytes } from "../../engine/json_bytes.ts";
import { scriptedRuntime, startEngineHarness } from "../support/engine.ts";

/**
 * A scrape asks the engines for their figures and waits 50 ms for answers (a scrape must stay fast); on a
 * loaded machine the engine may answer later, and that scrape has no engine series (seen in CI at load 17).
 * Scrapes again, for at most 10 s, until `until` matches.
 */
async function renderWithEngine(registry: MetricsRegistry, until: RegExp): Promise<string> {
  let text = "";
  const deadline = Date.now() + 10_000;
  while (!until.test(text) && Date.now() < deadline) text = await registry.render();
  return text;
}

const ENGINE_SERIES = /instance="engine-test"/;

/**
 * An execution stays active on its engine after its state reads SUCCESS: the engine confirms the state
 * record (engine/state/end_catch_up.ts) before it lets the execution go, so the gauge settles a moment
 * later: the test scrapes until it reads 0.
 */
const NONE_ACTIVE = /^compozy_engine_active_executions\{instance="engine-test"\} 0$/m;

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
    const text = await renderWithEngine(registry, NONE_ACTIVE);
    assert.match(text, NONE_ACTIVE);
    assert.match(text, /^compozy_engine_activation_duration_seconds_count\{instance="engine-test"\} 1$/m);
    assert.match(text, /^compozy_engine_redeliveries_total\{instance="engine-test"\} 0$/m);
    assert.match(text, /^compozy_engine_takeovers_total\{instance="engine-test"\} 0$/m);
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

Deno.test("engine metrics: an execution resumed mid-run from another engine's history is a take-over", async () => {
  const h = await startEngineHarness({
    ...PROJECT,
    "wf.yaml": `${PROJECT["wf.yaml"]}  - id: two\n    use: tool(id=echo)\n    with: { v: 2 }\n`,
  });
  const calls: number[] = [];
  const runtime = scriptedRuntime(h.bus, {
    echo: (input) => {
      calls.push(input.v as number);
      return input;
    },
  });
  const registry = new MetricsRegistry();
  const metrics = collectEngineMetrics(h.nc, registry);
  try {
    // What another engine left behind: the start, step one's success, and the execute command it held.
    const execId = uuidv7();
    const workflow = { id: "main", execId };
    await h.bus.publish(create(WorkflowExecutionStartedSchema, {
      metadata: h.bus.metadata(execId, `${execId}:started`),
      workflow,
      inputJson: jsonBytes({}),
    }));
    await h.bus.publish(create(TaskExecutionSuccessSchema, {
      metadata: h.bus.metadata(execId, "task-one:success"),
      workflow,
      task: { id: "one", execId: "task-one" },
      outputJson: jsonBytes({ v: 1 }),
      attempt: 1,
    }));
    await h.bus.publish(create(WorkflowExecuteSchema, {
      metadata: h.bus.metadata(execId, `${execId}:execute`),
      workflow,
      inputJson: jsonBytes({}),
    }));
    assert.equal((await h.engine.client.waitForEnd(execId, 30_000)).status, "SUCCESS");
    assert.deepEqual(calls, [2], "only the step without a recorded outcome ran");
    assert.match(
      await renderWithEngine(registry, ENGINE_SERIES),
      /^compozy_engine_takeovers_total\{instance="engine-test"\} 1$/m,
    );
  } finally {
    metrics.stop();
    runtime.stop();
    await h.close();
  }
});

Deno.test("engine metrics: lease renewals of a running execution, by outcome", async () => {
  const h = await startEngineHarness(PROJECT);
  // Longer than one renewal period (a fifth of the leases' 15 s TTL).
  const runtime = scriptedRuntime(h.bus, {
    echo: (input) => new Promise((r) => setTimeout(() => r(input), 3_500)),
  });
  const registry = new MetricsRegistry();
  const metrics = collectEngineMetrics(h.nc, registry);
  try {
    const { execId } = await h.engine.client.trigger("main", {});
    assert.equal((await h.engine.client.waitForEnd(execId, 30_000)).status, "SUCCESS");
    const text = await renderWithEngine(registry, ENGINE_SERIES);
    assert.match(
      text,
      /^compozy_engine_lease_renewals_total\{instance="engine-test",outcome="held"\} [1-9]\d*$/m,
    );
    assert.match(
      text,
      /^compozy_engine_lease_renewals_total\{instance="engine-test",outcome="expired"\} 0$/m,
    );
  } finally {
    metrics.stop();
    runtime.stop();
    await h.close();
  }
});
