/**
 * A moot wake-up of an ended execution writes nothing (docs/engine.md: it is dropped): a wait ended by its
 * signal leaves its time-out timer, which at the old deadline took the lease of the ended execution and
 * appended `workflow.taken_over` after `workflow.success` (outside review F3, /work/wt/engbreak/FINDINGS.md).
 * Real engine, real nats-server.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { waitForStatus, withEngine } from "../support/flows.ts";

Deno.test("F3: a wait's timer due after a signal ended the execution appends nothing after its end", async () => {
  await withEngine(
    `tasks:
  - id: w
    type: wait
    signal: sig
    timeout: 2s
  - { id: after, type: aggregate, outputs: { got: "{{ .tasks.w.output }}" } }
`,
    async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      await waitForStatus(h, execId, "WAITING");
      await h.engine.client.signal(execId, "sig", { a: 1 });
      const state = await h.engine.client.waitForEnd(execId, 15_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      // The wait's timer is handled (and acknowledged) at its deadline, 2 s after the wait began.
      const jsm = await jetstreamManager(h.nc);
      const deadline = Date.now() + 20_000;
      let left = (await jsm.streams.info(STREAMS.taskCommands)).state.messages;
      while (left > 0) {
        assert.ok(Date.now() < deadline, `${left} timer(s) still in TASK_CMDS`);
        await new Promise((r) => setTimeout(r, 100));
        left = (await jsm.streams.info(STREAMS.taskCommands)).state.messages;
      }
      const types = (await h.engine.client.events(execId)).map((e) => e.type);
      assert.equal(types.at(-1), "workflow.success", types.join(", "));
    },
  );
});

Deno.test("F3: a wait ended by its signal leaves no time-out timer in TASK_CMDS until the old deadline", async () => {
  await withEngine(
    `tasks:
  - id: w
    type: wait
    signal: sig
    timeout: 60s
  - id: after
    type: wait
    signal: never
`,
    async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      await waitForStatus(h, execId, "WAITING");
      const jsm = await jetstreamManager(h.nc);
      const timers = async () => (await jsm.streams.info(STREAMS.taskCommands)).state.messages;
      assert.equal(await timers(), 1);
      await h.engine.client.signal(execId, "sig", { a: 1 });
      // The second wait (no time-out) is reached: the first one's timer is removed, 55 s before it was due.
      const deadline = Date.now() + 20_000;
      while (
        !(await h.engine.client.events(execId)).some((e) =>
          e.type === "task.waiting_started" &&
          (e.data as { task?: { id?: string } }).task?.id === "after"
        )
      ) {
        assert.ok(Date.now() < deadline, "the second wait never started");
        await new Promise((r) => setTimeout(r, 100));
      }
      while ((await timers()) > 0) {
        assert.ok(Date.now() < deadline, "the ended wait's timer is still in TASK_CMDS");
        await new Promise((r) => setTimeout(r, 100));
      }
      await h.engine.client.cancel(execId);
    },
  );
});
