/**
 * A sub-workflow start whose answer is lost after its task was given up (its time-out, a decided race): the
 * task's own outcome is known (timed out, given up) and its child must not outlive it. Real nats-server, real
 * engine; the lost answer is the only fault.
 */
import assert from "node:assert/strict";
import { type BusMessage, RequestError } from "../../pkg/nats/mod.ts";
import { WorkflowTriggerSchema } from "../../pkg/pb/mod.ts";
import { type EngineHarness, scriptedRuntime, startEngineHarness } from "../support/engine.ts";
import type { ExecutionState } from "../../engine/state/execution_state.ts";

const RACE = `id: main
tasks:
  - id: p
    type: parallel
    strategy: race
    tasks:
      - { id: quick, type: sleep, duration: 500ms }
      - { id: sub, use: workflow(id=child) }
`;

const FILES = {
  "compozy.yaml": "name: flows\nworkflows:\n  - source: ./wf.yaml\n  - source: ./child.yaml\n",
  "wf.yaml": `id: main
tasks:
  - id: sub
    use: workflow(id=child)
    timeout: 1s
    on_error: { next: handled }
  - id: handled
    type: aggregate
    outputs: { code: "{{ .error.code }}" }
`,
  "child.yaml": `id: child
tasks:
  - id: hold
    type: wait
    signal: never
    timeout: 1h
`,
};

/** The first sub-workflow start is delivered (the child is stored and runs), its answer lost `lateMs` later. */
function loseFirstChildStartAnswer(h: EngineHarness, lateMs: number): { lost: () => number } {
  let lost = 0;
  const request = h.bus.request.bind(h.bus);
  h.bus.request = (async (message: BusMessage, replySchema, options) => {
    const isChildStart = message.$typeName === WorkflowTriggerSchema.typeName &&
      (message as { parent?: unknown }).parent !== undefined;
    if (!isChildStart || lost > 0) return await request(message, replySchema, options);
    lost++;
    await request(message, replySchema, options);
    await new Promise((r) => setTimeout(r, lateMs));
    throw new RequestError("Request on 'compozy.x.workflow.cmds.child.trigger' got no reply: timeout", "x");
  }) as typeof h.bus.request;
  return { lost: () => lost };
}

/** Runs `main` of `files` with the first child start's answer lost after 3 s; no child may stay open. */
async function runLosingFirstAnswer(files: Record<string, string>): Promise<ExecutionState> {
  const h = await startEngineHarness(files, { redelivery: { abandoned: 2 } });
  const runtime = scriptedRuntime(h.bus, {});
  try {
    const fault = loseFirstChildStartAnswer(h, 3_000);
    const { execId } = await h.engine.client.trigger("main", {});
    const state = await h.engine.client.waitForEnd(execId, 30_000);
    assert.equal(fault.lost(), 1);
    const ended = new Set(["SUCCESS", "FAILED", "CANCELED", "TIMED_OUT"]);
    const open = async () =>
      (await h.engine.client.list({ workflowId: "child" })).items.filter((c) => !ended.has(c.status));
    const deadline = Date.now() + 10_000;
    while ((await open()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      (await open()).map((c) => [c.exec_id, c.status]),
      [],
      "a child outlived its given-up task",
    );
    return state;
  } finally {
    runtime.stop();
    await h.close();
  }
}

Deno.test({
  name:
    "a sub-workflow start answered too late for its timed-out task: the time-out is handled, no child runs on",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const state = await runLosingFirstAnswer(FILES);
    assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
    assert.deepEqual(state.output, { code: "task_timeout" });
  },
});

Deno.test({
  name: "a sub-workflow start answered too late for the race its branch lost: no child runs on",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const state = await runLosingFirstAnswer({ ...FILES, "wf.yaml": RACE });
    assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
  },
});
