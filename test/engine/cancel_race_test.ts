/**
 * A signal racing a cancel (outside review B2): nothing is recorded after the execution's end, and a task
 * that was under way when it was canceled ends with it (`task.canceled`, its `ended_at` set). A cancel racing a
 * task's success (E4): the task ends once. Real nats-server, real engine.
 */
import assert from "node:assert/strict";
import type { BusMessage } from "../../pkg/nats/mod.ts";
import { TaskExecutionSuccessSchema } from "../../pkg/pb/mod.ts";
import { waitForStatus, withEngine } from "../support/flows.ts";
import { until } from "../support/until.ts";

const WAIT = `tasks:
  - { id: w, type: wait, signal: go, timeout: 1h }
  - { id: after, use: tool(id=slow), with: { ms: 3000, p: "{{ .tasks.w.output }}" } }
`;

Deno.test({
  name: "B2: a signal sent with a cancel is not recorded after the cancel; the waiting task ends canceled",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withEngine(WAIT, async (h) => {
      const { client } = h.engine;
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await client.trigger("main", {})).execId);
      for (const id of ids) await waitForStatus(h, id, "WAITING");
      await until(() => Promise.resolve(h.engine.activeExecutions() === 0));
      // Each cancel and signal sent together, the signal first for half of them.
      await Promise.all(ids.map((id, i) => {
        const cancel = () => client.cancel(id, "stop");
        const signal = () => client.signal(id, "go", { late: i });
        return i % 2 ? Promise.all([cancel(), signal()]) : Promise.all([signal(), cancel()]);
      }));
      for (const id of ids) {
        const state = await client.waitForEnd(id, 20_000);
        const history = await client.events(id);
        const types = history.map((e) => `${e.type} ${e.subject.split(".").at(-1)}`);
        // A signal taken before the cancel ran the next task (it ends with the cancel too); none after.
        assert.equal(state.status, "CANCELED", types.join(", "));
        const end = history.findIndex((e) => e.type === "workflow.canceled");
        assert.equal(end, history.length - 1, types.join(", "));
        // The task under way (the wait, or the next task if the signal came first) ends with the execution.
        for (const task of state.tasks.filter((t) => t.status === "CANCELED")) {
          assert.ok(task.ended_at, JSON.stringify(task));
          assert.ok(
            history.some((e) => e.type === "task.canceled" && e.subject.includes(`${task.exec_id}`)),
            types.join(", "),
          );
        }
      }
      // Seen after every end: no late record came meanwhile.
      for (const id of ids) {
        const types = (await client.events(id)).map((e) => e.type);
        assert.equal(types.at(-1), "workflow.canceled", types.join(", "));
      }
    });
  },
});

Deno.test({
  name: "a race's losing tool call is recorded task.canceled once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const RACE = `tasks:
  - id: r
    type: parallel
    strategy: race
    tasks:
      - { id: quick, type: sleep, duration: 100ms }
      - { id: lose, use: tool(id=slow), with: { ms: 3000 } }
`;
    await withEngine(RACE, async (h) => {
      const { client } = h.engine;
      const { execId } = await client.trigger("main", {});
      const state = await client.waitForEnd(execId, 20_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      const lose = state.tasks.find((t) => t.task_id === "r/lose");
      assert.ok(lose, JSON.stringify(state.tasks));
      const canceled = async () =>
        (await client.events(execId)).filter((e) =>
          e.type === "task.canceled" && e.subject.includes(lose.exec_id)
        );
      await until(async () => (await canceled()).length > 0);
      // Both were published at the give-up, before the race's end; the slow call ends meanwhile too.
      await new Promise((r) => setTimeout(r, 3_500));
      // Before the fix the runner and the driver each published it (same event id, two messages).
      assert.equal((await canceled()).length, 1);
    });
  },
});

Deno.test({
  name: "E4: a cancel while a task's success is being stored records no task.canceled after it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const wf = "tasks:\n  - { id: a, use: tool(id=echo) }\n  - { id: b, use: tool(id=echo) }\n";
    await withEngine(wf, async (h) => {
      let execId = "";
      let canceling: Promise<void> | undefined;
      const publish = h.bus.publish.bind(h.bus);
      h.bus.publish = async (message: BusMessage, options) => {
        const success = message.$typeName === TaskExecutionSuccessSchema.typeName &&
          (message as { task?: { id?: string } }).task?.id === "a";
        if (success && !canceling) {
          // The cancel is taken while a's success is still on its way to the stream.
          canceling = h.engine.client.cancel(execId, "racing");
          await canceling;
          await new Promise((r) => setTimeout(r, 300));
        }
        return await publish(message, options);
      };
      execId = (await h.engine.client.trigger("main", {})).execId;
      const state = await h.engine.client.waitForEnd(execId, 15_000);
      assert.equal(state.status, "CANCELED");
      const ends = (await h.engine.client.events(execId))
        .filter((e) => (e.data as { task?: { id?: string } }).task?.id === "a")
        .filter((e) => ["task.success", "task.canceled"].includes(e.type))
        .map((e) => e.type);
      // Before the fix: ["task.success", "task.canceled"].
      assert.deepEqual(ends, ["task.success"]);
    });
  },
});
