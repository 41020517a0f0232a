/**
 * A sub-workflow inside a task that is given up is canceled with it (docs/engine.md, "Sub-workflows" and a
 * task's `timeout`), also when the give-up happens on a replay of a parked parent: a composite's own time-out
 * (outside review E5) and a retried sub-workflow task's time-out (model finding G10). Real nats-server, real
 * engine.
 */
import assert from "node:assert/strict";
import type { ExecutionState } from "../../engine/mod.ts";
import type { BusMessage } from "../../pkg/nats/mod.ts";
import { WorkflowCancelSchema } from "../../pkg/pb/mod.ts";
import type { EngineHarness } from "../support/engine.ts";
import { withEngine } from "../support/flows.ts";

const STUCK = "id: stuck\ntasks:\n  - id: hold\n    type: wait\n    signal: never\n";

function project(wf: string): Record<string, string> {
  return {
    "compozy.yaml": "name: kids\nworkflows:\n  - source: ./wf.yaml\n  - source: ./stuck.yaml\n",
    "wf.yaml": `id: main\ntools:\n  - { id: echo, execute: ./t.ts }\n${wf}`,
    "stuck.yaml": STUCK,
    "t.ts": "export default (input: unknown) => input;\n",
  };
}

async function childrenOf(h: EngineHarness, workflowId: string): Promise<ExecutionState[]> {
  const page = await h.engine.client.list({ workflowId });
  return await Promise.all(page.items.map(async (item) => (await h.engine.client.get(item.exec_id))!));
}

/** Every child of `stuck` ends CANCELED (each waits for a signal that never comes: only a cancel ends it). */
async function assertChildrenCanceled(h: EngineHarness, count: number): Promise<void> {
  const children = await childrenOf(h, "stuck");
  assert.equal(children.length, count, JSON.stringify(children.map((c) => c.exec_id)));
  for (const child of children) {
    const end = await h.engine.client.waitForEnd(child.exec_id, 15_000);
    assert.equal(end.status, "CANCELED", `child ${child.exec_id}`);
  }
}

/** The task executions at `keys` each have a `task.canceled` in the parent's history. */
async function assertCanceledRecorded(h: EngineHarness, execId: string, keys: string[]): Promise<void> {
  const events = await h.engine.client.events(execId);
  const state = (await h.engine.client.get(execId))!;
  for (const key of keys) {
    const task = state.tasks.find((t) => t.task_id === key);
    assert.ok(task, `no task ${key}`);
    assert.equal(task.status, "CANCELED", key);
    const canceled = events.filter((e) =>
      e.type === "task.canceled" && e.subject.includes(`.${task.exec_id}.`)
    );
    assert.equal(canceled.length, 1, `task.canceled of ${key}: ${events.map((e) => e.type).join(", ")}`);
  }
}

for (const retried of [false, true]) {
  Deno.test({
    name: `E5: a composite's own time-out${
      retried ? " (with retry)" : ""
    } cancels the sub-workflow inside it`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const wf = `tasks:
  - id: k
    type: composite
    timeout: 1s
${retried ? "    retry: { max_attempts: 2, backoff: { initial: 0s, max: 0s } }\n" : ""}    tasks:
      - { id: k1, use: tool(id=echo), with: { v: 1 } }
      - { id: ksub, use: workflow(id=stuck) }
    on_error: { next: h }
  - { id: ok, type: aggregate, outputs: { v: ok }, final: true }
  - { id: h, type: aggregate, outputs: { code: "{{ .error.code }}" }, final: true }
`;
      await withEngine(project(wf), async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        const state = await h.engine.client.waitForEnd(execId, 20_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { code: "task_timeout" });
        // Before the fix each child waited on (in the review, ran to SUCCESS after its parent's end).
        await assertChildrenCanceled(h, retried ? 2 : 1);
        await assertCanceledRecorded(h, execId, retried ? ["k/ksub", "k#2/ksub"] : ["k/ksub"]);
      });
    },
  });
}

/**
 * The first cancel sent to each child fails, as if the engine died just before sending it: the window between
 * an attempt's time-out and its child's cancel (model finding G10, where the retry was recorded first).
 */
function loseFirstCancelOfEachChild(h: EngineHarness): { lost: () => number } {
  const tried = new Set<string>();
  const publish = h.bus.publish.bind(h.bus);
  h.bus.publish = (message: BusMessage, options) => {
    const child = message.$typeName === WorkflowCancelSchema.typeName
      ? (message as { workflow?: { execId?: string } }).workflow?.execId
      : undefined;
    if (child && !tried.has(child)) {
      tried.add(child);
      return Promise.reject(new Error("engine died before the child's cancel"));
    }
    return publish(message, options);
  };
  return { lost: () => tried.size };
}

Deno.test({
  name:
    "G10: each attempt's child of a retried sub-workflow task that timed out is canceled, though a cancel is lost",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The parent parks while its children wait; each attempt's time-out comes as a durable timer, on a replay.
    // Handled by on_error, the parent ends SUCCESS: its end cancels no child, each attempt's clean-up must.
    const wf = `tasks:
  - id: each
    type: collection
    items: [a, b]
    task:
      id: sub
      use: workflow(id=stuck)
      timeout: 1s
      retry: { max_attempts: 2, backoff: { initial: 10ms, max: 10ms } }
    on_error: { next: h }
  - { id: ok, type: aggregate, outputs: { v: ok }, final: true }
  - { id: h, type: aggregate, outputs: { code: "{{ .error.code }}" }, final: true }
`;
    await withEngine(project(wf), async (h) => {
      const fault = loseFirstCancelOfEachChild(h);
      const { execId } = await h.engine.client.trigger("main", {});
      const state = await h.engine.client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(state.output, { code: "task_timeout" });
      // Before the fix the lost cancel was only logged and the retry recorded: attempt 1's children waited on.
      await assertChildrenCanceled(h, 4);
      assert.equal(fault.lost(), 4);
      const sub = state.tasks.filter((t) => /^each\[\d\]$/.test(t.task_id));
      assert.deepEqual(sub.map((t) => [t.status, t.attempts]), [["FAILED", 2], ["FAILED", 2]]);
    });
  },
});
