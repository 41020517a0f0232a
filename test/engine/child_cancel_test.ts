/**
 * Which sub-workflows a parent cancels, and that it does not lose them (outside review D1, D2, D3): a given-up
 * task cancels its own child only, never a sibling's or its next attempt's; a time-out of the parent cancels
 * its running children like a cancel does; and a child cancel that could not be sent is sent again, before the
 * parent's end. Real nats-server, real engine.
 */
import assert from "node:assert/strict";
import type { ExecutionState } from "../../engine/mod.ts";
import { BUCKETS, type BusMessage } from "../../pkg/nats/mod.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { create } from "@bufbuild/protobuf";
import { Kvm } from "@nats-io/kv";
import {
  TaskExecutionCanceledSchema,
  WorkflowCancelSchema,
  WorkflowTriggerReplySchema,
  WorkflowTriggerSchema,
} from "../../pkg/pb/mod.ts";
import type { EngineHarness } from "../support/engine.ts";
import { waitForChild, waitForStatus, withEngine } from "../support/flows.ts";
import { until } from "../support/until.ts";

const STUCK = "id: stuck\ntasks:\n  - id: hold\n    type: wait\n    signal: never\n";
const NAP = "id: nap\ntasks:\n  - { id: snooze, type: sleep, duration: 1500ms }\n";

function project(wf: string): Record<string, string> {
  return {
    "compozy.yaml":
      "name: kids\nworkflows:\n  - source: ./wf.yaml\n  - source: ./stuck.yaml\n  - source: ./nap.yaml\n",
    "wf.yaml":
      `id: main\ntools:\n  - { id: slow, execute: ./t.ts }\n  - { id: boom, execute: ./t.ts }\n${wf}`,
    "stuck.yaml": STUCK,
    "nap.yaml": NAP,
    "t.ts": "export default (input: unknown) => input;\n",
  };
}

async function childrenOf(h: EngineHarness, workflowId: string): Promise<ExecutionState[]> {
  const page = await h.engine.client.list({ workflowId });
  return await Promise.all(page.items.map(async (item) => (await h.engine.client.get(item.exec_id))!));
}

function taskOf(state: ExecutionState, id: string) {
  const task = state.tasks.find((t) => t.task_id === id);
  assert.ok(task, `no task ${id} in ${JSON.stringify(state.tasks.map((t) => t.task_id))}`);
  return task;
}

/** The parent's history ends with its own end: nothing of it is recorded after (B2). */
async function assertEndsLast(h: EngineHarness, execId: string, end: string): Promise<void> {
  const types = (await h.engine.client.events(execId)).map((e) => e.type);
  assert.equal(types.at(-1), end, types.join(", "));
}

Deno.test({
  name: "D1: a timed-out sub-workflow task cancels its own child, not its sibling's",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const wf = `tasks:
  - id: p
    type: parallel
    strategy: best_effort
    tasks:
      - { id: x, use: workflow(id=stuck), timeout: 500ms }
      - { id: y, use: workflow(id=nap) }
`;
    await withEngine(project(wf), async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      const state = await h.engine.client.waitForEnd(execId, 20_000);
      assert.equal(taskOf(state, "p/x").error?.code, "task_timeout", JSON.stringify(state.tasks));
      // y's child was canceled with x's before the fix: y failed `canceled`.
      assert.equal(taskOf(state, "p/y").status, "SUCCESS", JSON.stringify(taskOf(state, "p/y").error));
      const [nap] = await childrenOf(h, "nap");
      assert.equal(nap.status, "SUCCESS");
      const [stuck] = await childrenOf(h, "stuck");
      assert.equal((await h.engine.client.waitForEnd(stuck.exec_id, 10_000)).status, "CANCELED");
    });
  },
});

Deno.test({
  name: "E6: a child canceled by an operator is not retried by its task's retry; on_error takes the failure",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const wf = `tasks:
  - id: sub
    use: workflow(id=stuck)
    retry: { max_attempts: 3, backoff: { initial: 0s, max: 0s } }
    on_error: { next: handled }
  - { id: handled, type: aggregate, outputs: { code: "{{ .tasks.sub.error.code }}" }, final: true }
`;
    await withEngine(project(wf), async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      const child = await waitForChild(h, "stuck");
      await waitForStatus(h, child.exec_id, "WAITING");
      await h.engine.client.cancel(child.exec_id);
      const state = await h.engine.client.waitForEnd(execId, 20_000);
      const sub = taskOf(state, "sub");
      // Before the fix the cancel was a retryable failure: attempt 2 started a new child, undoing the cancel.
      assert.equal(sub.error?.code, "canceled", JSON.stringify(sub));
      assert.equal(sub.attempts, 1);
      assert.equal(state.status, "SUCCESS");
      assert.deepEqual(state.output, { code: "canceled" });
      assert.deepEqual((await childrenOf(h, "stuck")).map((c) => c.status), ["CANCELED"]);
    });
  },
});

Deno.test({
  name: "D1: a retried sub-workflow task's clean-up of attempt 1 leaves attempt 2's child alone",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const wf = `tasks:
  - id: sub
    use: workflow(id=stuck)
    timeout: 700ms
    retry: { max_attempts: 2, backoff: { initial: 0s, max: 0s } }
`;
    await withEngine(project(wf), async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      const state = await h.engine.client.waitForEnd(execId, 20_000);
      const sub = taskOf(state, "sub");
      // Before the fix attempt 1's clean-up canceled attempt 2's child: the task failed `canceled`.
      assert.equal(sub.error?.code, "task_timeout", JSON.stringify(sub));
      assert.equal(sub.attempts, 2);
      const children = await childrenOf(h, "stuck");
      assert.equal(children.length, 2);
      for (const child of children) {
        assert.equal((await h.engine.client.waitForEnd(child.exec_id, 10_000)).status, "CANCELED");
      }
    });
  },
});

Deno.test({
  name: "D2: a live workflow's time-out cancels its running sub-workflow",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A tool call under way keeps the parent's driver live: its own deadline times it out (a parked parent's
    // replay for the durable timer starts the child again and, finding the parent ended, canceled it that way).
    const wf = `config: { timeout: 1s }
tasks:
  - id: p
    type: parallel
    tasks:
      - { id: t, use: tool(id=slow), with: { ms: 4000 } }
      - { id: sub, use: workflow(id=stuck) }
`;
    await withEngine(project(wf), async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      assert.equal((await h.engine.client.waitForEnd(execId, 20_000)).status, "TIMED_OUT");
      const child = await waitForChild(h, "stuck");
      // Before the fix the child waited on for ever.
      assert.equal((await h.engine.client.waitForEnd(child.exec_id, 10_000)).status, "CANCELED");
      await assertEndsLast(h, execId, "workflow.timed_out");
    });
  },
});

/**
 * Makes the first cancel sent to `childOf()`'s child fail, as if the engine died just before sending it
 * (D3's window: after the end was recorded, before the child was told, the cancel was never sent again).
 */
function loseFirstChildCancel(h: EngineHarness, child: () => string | undefined): { lost: () => number } {
  let lost = 0;
  const publish = h.bus.publish.bind(h.bus);
  h.bus.publish = (message: BusMessage, options) => {
    const cancel = message.$typeName === WorkflowCancelSchema.typeName &&
      (message as { workflow?: { execId?: string } }).workflow?.execId === child();
    if (cancel && lost++ === 0) return Promise.reject(new Error("engine died before the child's cancel"));
    return publish(message, options);
  };
  return { lost: () => lost };
}

for (const how of ["cancel", "time-out"] as const) {
  Deno.test({
    name: `D3: a child cancel that is not sent on the parent's ${how} is sent again, before the parent's end`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const wf = how === "cancel"
        ? "tasks:\n  - { id: sub, use: workflow(id=stuck) }\n"
        : "config: { timeout: 2s }\ntasks:\n  - { id: sub, use: workflow(id=stuck) }\n";
      await withEngine(project(wf), async (h) => {
        const seen: { childId?: string } = {};
        const fault = loseFirstChildCancel(h, () => seen.childId);
        const { execId } = await h.engine.client.trigger("main", {});
        const childId = seen.childId = (await waitForChild(h, "stuck")).exec_id;
        await waitForStatus(h, childId, "WAITING");
        if (how === "cancel") await h.engine.client.cancel(execId, "stop");
        // Before the fix the parent ended with its child's cancel lost, and nothing sent it again.
        assert.equal((await h.engine.client.waitForEnd(childId, 15_000)).status, "CANCELED");
        const parent = await h.engine.client.waitForEnd(execId, 15_000);
        assert.equal(parent.status, how === "cancel" ? "CANCELED" : "TIMED_OUT");
        assert.ok(fault.lost() >= 2, `child cancels tried: ${fault.lost()}`);
        await assertEndsLast(h, execId, how === "cancel" ? "workflow.canceled" : "workflow.timed_out");
      });
    },
  });
}

Deno.test({
  name: "D2: a workflow's failure cancels a sub-workflow its given-up task could not cancel",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const wf = `tasks:
  - id: p
    type: parallel
    strategy: fail_fast
    tasks:
      - { id: sub, use: workflow(id=stuck) }
      - id: bad
        type: composite
        tasks:
          - { id: later, type: sleep, duration: 1500ms }
          - { id: fail, use: tool(id=boom) }
`;
    await withEngine(project(wf), async (h) => {
      let childId: string | undefined;
      const fault = loseFirstChildCancel(h, () => childId);
      const failing = waitForChild(h, "stuck").then((child) => childId = child.exec_id);
      const { execId } = await h.engine.client.trigger("main", {});
      await failing;
      const parent = await h.engine.client.waitForEnd(execId, 15_000);
      assert.equal(parent.status, "FAILED", JSON.stringify(parent.error));
      // Before the fix a failure sent no child cancel: the one its task's give-up lost was the only one.
      assert.equal((await h.engine.client.waitForEnd(childId!, 15_000)).status, "CANCELED");
      assert.ok(fault.lost() >= 2, `child cancels tried: ${fault.lost()}`);
      await assertEndsLast(h, execId, "workflow.failed");
    });
  },
});

Deno.test({
  name: "a sub-workflow start handled after its parent ended is refused (parent_ended), nothing started",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withEngine(project("tasks:\n  - { id: t, use: tool(id=slow), with: { ms: 10 } }\n"), async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      assert.equal((await h.engine.client.waitForEnd(execId, 15_000)).status, "SUCCESS");
      // The parent's request for its child, answered late (it waited in line, or was sent again).
      const reply = await h.bus.request(
        create(WorkflowTriggerSchema, {
          metadata: h.bus.metadata(execId),
          workflow: { id: "nap", execId: crypto.randomUUID() },
          inputJson: new TextEncoder().encode("{}"),
          idempotencyKey: `child:late-${execId}`,
          triggerSource: "workflow",
          parent: { workflow: { id: "main", execId }, task: { id: "sub", execId: crypto.randomUUID() } },
        }),
        WorkflowTriggerReplySchema,
        { timeoutMs: 10_000 },
      );
      assert.equal(reply.error?.code, "parent_ended", `${reply.execId} ${reply.error?.message}`);
      assert.match(reply.error?.message ?? "", new RegExp(`parent ${execId} ended SUCCESS`));
      assert.deepEqual((await childrenOf(h, "nap")).map((c) => c.status), [], "no child was started");
    });
  },
});

Deno.test({
  name: "a sub-workflow start refused as its task was given up cancels the child an earlier request started",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Model finding G14: a parent's replay asks again (same key) for the child its task started before the
    // crash, and gives the task up (its composite timed out) while the request is in flight. The orchestrator
    // refused the start (parent_ended), the runner took that for "nothing started", and the child the first
    // request started waited on for good.
    await withEngine(project("tasks:\n  - { id: sub, use: workflow(id=stuck) }\n"), async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      const child = await waitForChild(h, "stuck");
      await waitForStatus(h, child.exec_id, "WAITING");
      const sub = (await h.engine.client.get(execId))!.tasks.find((t) => t.task_id === "sub")!;
      // The task's give-up, as the parent's runner records it, before the request of its replay is handled.
      await h.bus.publish(create(TaskExecutionCanceledSchema, {
        metadata: h.bus.metadata(execId, `${sub.exec_id}:canceled`),
        workflow: { id: "main", execId },
        task: { id: "sub", execId: sub.exec_id },
      }));
      const reply = await h.bus.request(
        create(WorkflowTriggerSchema, {
          metadata: h.bus.metadata(execId),
          workflow: { id: "stuck", execId: uuidv7() },
          inputJson: new TextEncoder().encode("{}"),
          idempotencyKey: `child:${sub.exec_id}`,
          triggerSource: "workflow",
          parent: { workflow: { id: "main", execId }, task: { id: "sub", execId: sub.exec_id } },
        }),
        WorkflowTriggerReplySchema,
        { timeoutMs: 10_000 },
      );
      assert.equal(reply.error?.code, "parent_ended", `${reply.execId} ${reply.error?.message}`);
      // Before the fix: WAITING for ever.
      assert.equal((await h.engine.client.waitForEnd(child.exec_id, 15_000)).status, "CANCELED");
      assert.equal((await childrenOf(h, "stuck")).length, 1, "no other child was started");
    });
  },
});

Deno.test({
  name: "a sub-workflow start that passed the parent check as its parent ended is canceled, not left running",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Leftover of issue 9: the parent's end (its task canceled, then its children looked up in the index)
    // fell between the orchestrator's parent_ended check and the child's index entry: the child was in
    // neither, and ran on after its parent's end.
    await withEngine(project("tasks:\n  - { id: sub, use: workflow(id=stuck) }\n"), async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      const first = await waitForChild(h, "stuck");
      await waitForStatus(h, first.exec_id, "WAITING");
      const parent = await h.engine.client.get(execId);
      const sub = parent!.tasks.find((t) => t.task_id === "sub")!;
      // The orchestrator's next idempotency claim (after its parent check) is held until the parent ended.
      let held!: () => void;
      const reached = new Promise<void>((r) => held = r);
      let release!: () => void;
      const released = new Promise<void>((r) => release = r);
      const request = h.nc.request.bind(h.nc);
      let armed = true;
      h.nc.request = async (
        subject: string,
        ...rest: Parameters<typeof h.nc.request> extends [unknown, ...infer R] ? R : never
      ) => {
        if (armed && subject.startsWith(`$KV.${BUCKETS.idempotency}.`)) {
          armed = false;
          held();
          await released;
        }
        return await request(subject, ...rest);
      };
      // The parent's start request for its task's next attempt, sent again by an engine that died since.
      const late = h.bus.request(
        create(WorkflowTriggerSchema, {
          metadata: h.bus.metadata(execId),
          workflow: { id: "stuck", execId: uuidv7() },
          inputJson: new TextEncoder().encode("{}"),
          idempotencyKey: `child:${sub.exec_id}:2`,
          triggerSource: "workflow",
          parent: { workflow: { id: "main", execId }, task: { id: "sub", execId: sub.exec_id } },
        }),
        WorkflowTriggerReplySchema,
        { timeoutMs: 30_000 },
      );
      await reached;
      await h.engine.client.cancel(execId, "stop");
      assert.equal((await h.engine.client.waitForEnd(execId, 15_000)).status, "CANCELED");
      release();
      const reply = await late;
      if (reply.error) {
        assert.equal(reply.error.code, "parent_ended", reply.error.message);
      } else {
        // Before the fix: WAITING for ever.
        assert.equal((await h.engine.client.waitForEnd(reply.execId, 15_000)).status, "CANCELED");
        // Nothing of it ran: its first activation applied the cancel (before the review's fix, a fresh
        // activation started its wait first).
        const ran = (await h.engine.client.events(reply.execId)).map((e) => e.type).filter((t) =>
          t.startsWith("task.")
        );
        assert.deepEqual(ran, []);
      }
      assert.equal((await h.engine.client.waitForEnd(first.exec_id, 15_000)).status, "CANCELED");
    });
  },
});

Deno.test({
  name:
    "an adopted sub-workflow start (its key claimed, its start never stored) whose parent ended meanwhile is canceled",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The adopt() path of the same window: an engine claimed the child's idempotency key and died before the
    // start. The parent's start request, sent again, passes the parent check; the parent is canceled before
    // the orchestrator reads the claim, so the parent's end looked its children up before the adopted child
    // was indexed. Before the fix, adopt() started it with no second check: WAITING for ever.
    await withEngine(project("tasks:\n  - { id: sub, use: workflow(id=stuck) }\n"), async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      const first = await waitForChild(h, "stuck");
      await waitForStatus(h, first.exec_id, "WAITING");
      const parent = await h.engine.client.get(execId);
      const sub = parent!.tasks.find((t) => t.task_id === "sub")!;
      // What a SIGKILL between the claim and the start leaves: the key names an execution with no start (a
      // claim without an input digest is adopted whatever the input, orchestrator.ts claimKey).
      const key = `child:${sub.exec_id}:2`;
      const orphan = uuidv7();
      const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`stuck\n${key}`));
      const name = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
      await (await new Kvm(h.nc).open(BUCKETS.idempotency)).create(name, new TextEncoder().encode(orphan));
      // The orchestrator's idempotency claim (after its parent check) is held until the parent ended.
      let held!: () => void;
      const reached = new Promise<void>((r) => held = r);
      let release!: () => void;
      const released = new Promise<void>((r) => release = r);
      const request = h.nc.request.bind(h.nc);
      let armed = true;
      h.nc.request = async (
        subject: string,
        ...rest: Parameters<typeof h.nc.request> extends [unknown, ...infer R] ? R : never
      ) => {
        if (armed && subject.startsWith(`$KV.${BUCKETS.idempotency}.`)) {
          armed = false;
          held();
          await released;
        }
        return await request(subject, ...rest);
      };
      const late = h.bus.request(
        create(WorkflowTriggerSchema, {
          metadata: h.bus.metadata(execId),
          workflow: { id: "stuck", execId: uuidv7() },
          inputJson: new TextEncoder().encode("{}"),
          idempotencyKey: key,
          triggerSource: "workflow",
          parent: { workflow: { id: "main", execId }, task: { id: "sub", execId: sub.exec_id } },
        }),
        WorkflowTriggerReplySchema,
        { timeoutMs: 30_000 },
      );
      await reached;
      await h.engine.client.cancel(execId, "stop");
      assert.equal((await h.engine.client.waitForEnd(execId, 15_000)).status, "CANCELED");
      release();
      const reply = await late;
      assert.equal(reply.error, undefined, reply.error?.message);
      assert.deepEqual({ execId: reply.execId, duplicate: reply.duplicate }, {
        execId: orphan,
        duplicate: true,
      });
      // Before the fix: WAITING for ever.
      assert.equal((await h.engine.client.waitForEnd(orphan, 15_000)).status, "CANCELED");
      // Nothing of it ran: an adopted start is not marked fresh, so its first activation applied the cancel.
      const ran = (await h.engine.client.events(orphan)).map((e) => e.type).filter((t) =>
        t.startsWith("task.")
      );
      assert.deepEqual(ran, []);
      assert.equal((await h.engine.client.waitForEnd(first.exec_id, 15_000)).status, "CANCELED");
    });
  },
});

Deno.test({
  name:
    "B4: a sub-workflow start handled after its task was given up is refused, whatever the parent's state says",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The parent check read the parent's state document, which the state folder writes after the history:
    // a start handled after the parent's end (or its task's give-up) was stored, before the document showed
    // it, started the child and its tool ran. Here the task loses a race and the parent goes on RUNNING: its
    // document never shows an end, its history shows the task's task.canceled.
    const wf = `tasks:
  - id: r
    type: parallel
    strategy: race
    tasks:
      - { id: quick, use: tool(id=slow), with: { ms: 10 } }
      - { id: sub, use: workflow(id=nap) }
  - { id: after, type: wait, signal: never }
`;
    await withEngine(project(wf), async (h) => {
      let subCanceled!: () => void;
      const canceled = new Promise<void>((r) => subCanceled = r);
      const replies: Array<{ execId: string; error?: { code: string; message: string } }> = [];
      const request = h.bus.request.bind(h.bus);
      h.bus.request = (async (message: BusMessage, schema, options) => {
        const start = message.$typeName === WorkflowTriggerSchema.typeName &&
          (message as { parent?: { task?: { id?: string } } }).parent?.task?.id === "r/sub";
        // The start waits in line until its task lost the race.
        if (start) await canceled;
        const reply = await request(message, schema, options);
        if (start) replies.push(reply as unknown as (typeof replies)[number]);
        return reply;
      }) as typeof h.bus.request;
      const { execId } = await h.engine.client.trigger("main", {});
      await until(async () =>
        (await h.engine.client.events(execId)).some((e) =>
          e.type === "task.canceled" && (e.data as { task?: { id?: string } }).task?.id === "r/sub"
        )
      );
      subCanceled();
      await waitForStatus(h, execId, "WAITING");
      await until(() => Promise.resolve(replies.length > 0));
      // Before the fix: the child started (its document RUNNING, then canceled by the parent's driver).
      assert.equal(
        replies[0].error?.code,
        "parent_ended",
        `${replies[0].execId} ${replies[0].error?.message}`,
      );
      assert.match(replies[0].error?.message ?? "", /r\/sub|task/);
      assert.deepEqual((await childrenOf(h, "nap")).map((c) => c.status), [], "no child was started");
      await h.engine.client.cancel(execId, "done");
    });
  },
});
