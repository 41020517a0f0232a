/**
 * A workflow's `config.input` `default`s are part of its input (docs/yaml-reference.md, "Workflow file"): an
 * execution started over HTTP, by a webhook or as a sub-workflow sees them, its recorded input (state and
 * `workflow.started` event) holds them, and a 422 names the input itself with the path `/`, as every other
 * error detail of the API does. A real engine on a real nats-server behind real HTTP.
 */
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { ScheduleRunner } from "../../engine/triggers/schedule_runner.ts";
import { kvScheduleStore } from "../../engine/triggers/schedule_store.ts";
import { BUCKETS } from "../../pkg/nats/provision.ts";
import type { EngineHarness } from "../support/engine.ts";
import { callApi as call, withEngineApi } from "../support/engine_api.ts";

const FILES = {
  "compozy.yaml":
    "name: input-defaults\nworkflows:\n  - source: ./forecast.yaml\n  - source: ./caller.yaml\n",
  "forecast.yaml": `id: forecast
config:
  input:
    type: object
    properties:
      city: { type: string }
      units: { type: string, default: metric }
      days: { type: integer, default: 3 }
      options:
        type: object
        default: {}
        properties: { lang: { type: string, default: en } }
    required: [city]
triggers:
  - type: webhook
    config: { url: /forecast, input: { city: "{{ .payload.city }}" } }
  - type: schedule
    config: { cron: "0 7 * * *", input: { city: Bern } }
tasks:
  - { id: nap, type: sleep, duration: 1ms }
outputs:
  seen: "{{ .workflow.input }}"
`,
  "caller.yaml": `id: caller
tasks:
  - id: child
    use: workflow(id=forecast)
    with: { city: Lyon, units: imperial }
outputs:
  child: "{{ .tasks.child.output }}"
`,
};

const DEFAULTED = { units: "metric", days: 3, options: { lang: "en" } };

async function finished(base: string, execId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const { body } = await call(`${base}/api/executions/${execId}`);
    // A caller waiting on its sub-workflow is WAITING, not RUNNING, until the child's end wakes it.
    if (["SUCCESS", "FAILED", "TIMED_OUT", "CANCELED"].includes(body.status)) return body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`execution ${execId} has not ended`);
}

async function startedEventInput(base: string, execId: string): Promise<unknown> {
  const { body } = await call(`${base}/api/executions/${execId}/events`);
  const started = body.events.find((e: { type: string }) => e.type === "workflow.started");
  assert.ok(started, JSON.stringify(body.events.map((e: { type: string }) => e.type)));
  return started.data.input;
}

Deno.test("config.input defaults are applied to the input every start records and runs with", async (t) => {
  await withEngineApi(FILES, async (base: string, h: EngineHarness) => {
    await t.step("an HTTP start: state, started event and the workflow's own view", async () => {
      const res = await call(
        `${base}/api/workflows/forecast/executions`,
        "POST",
        JSON.stringify({ input: { city: "Paris", days: 5 } }),
      );
      assert.equal(res.status, 202, res.text);
      const state = await finished(base, res.body.exec_id);
      const expected = { ...DEFAULTED, city: "Paris", days: 5 };
      assert.equal(state.status, "SUCCESS", JSON.stringify(state));
      assert.deepEqual(state.input, expected);
      assert.deepEqual((state.output as { seen: unknown }).seen, expected);
      assert.deepEqual(await startedEventInput(base, res.body.exec_id), expected);
    });

    await t.step("a webhook start", async () => {
      const res = await call(`${base}/api/webhooks/forecast`, "POST", JSON.stringify({ city: "Oslo" }));
      assert.equal(res.status, 202, res.text);
      const state = await finished(base, res.body.exec_id);
      assert.deepEqual(state.input, { ...DEFAULTED, city: "Oslo" });
    });

    await t.step("a schedule's tick", async () => {
      // A tick fired by hand, as the engine's runner fires it when it is due, through the engine's client.
      const runner = new ScheduleRunner({
        project: h.project,
        client: h.engine.client,
        store: kvScheduleStore(await new Kvm(h.nc).open(BUCKETS.schedules)),
        instanceId: "input-defaults-test",
        processEnv: {},
      });
      assert.equal(await runner.fire(runner.schedules[0], new Date("2025-01-01T07:00:00Z")), "fired");
      const { body } = await call(`${base}/api/executions?workflow_id=forecast`);
      const ticked = body.items.find((e: { input?: { city?: string } }) => e.input?.city === "Bern");
      assert.ok(ticked, JSON.stringify(body.items));
      const state = await finished(base, ticked.exec_id);
      assert.deepEqual(state.input, { ...DEFAULTED, city: "Bern" });
    });

    await t.step("a sub-workflow started with `with`", async () => {
      const res = await call(`${base}/api/workflows/caller/executions`, "POST", "{}");
      assert.equal(res.status, 202, res.text);
      const state = await finished(base, res.body.exec_id);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state));
      const child = (state.output as { child: { seen: unknown } }).child;
      assert.deepEqual(child.seen, { ...DEFAULTED, city: "Lyon", units: "imperial" });
    });

    await t.step("a default does not make a wrong value right; the input itself is the path /", async () => {
      const wrong = await call(
        `${base}/api/workflows/forecast/executions`,
        "POST",
        JSON.stringify({ input: { city: "Rome", days: "many" } }),
      );
      assert.equal(wrong.status, 422, wrong.text);
      assert.deepEqual(wrong.body.error.details, [{ path: "/days", message: "must be integer" }]);
      const notObject = await call(`${base}/api/workflows/forecast/executions`, "POST", '{"input": [1]}');
      assert.equal(notObject.status, 422, notObject.text);
      assert.equal(notObject.body.error.code, "input_invalid");
      assert.deepEqual(notObject.body.error.details, [{ path: "/", message: "must be object" }]);
    });
  });
});
