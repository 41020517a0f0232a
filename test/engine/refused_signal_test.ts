/**
 * A signal that cannot be taken writes nothing (outside review F3's rest and F5's rest): one no wait of a
 * parked execution listens for appended `workflow.taken_over` (the activation's fence) each time; one whose
 * payload is too large for the wait's record (sent through NATS directly, near `max_payload`) made the wait's
 * end unrecordable, and the execution was given up and replayed again and again. Real engine, real nats-server.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { encode } from "../../pkg/nats/mod.ts";
import { WorkflowSignalSchema } from "../../pkg/pb/mod.ts";
import { waitForStatus, withEngine } from "../support/flows.ts";
import { until } from "../support/until.ts";

const WAIT = `tasks:
  - { id: w, type: wait, signal: go }
  - { id: after, type: aggregate, outputs: { got: "{{ .tasks.w.output.n }}" } }
`;

Deno.test("a signal no wait of a parked execution listens for writes nothing", async () => {
  await withEngine(WAIT, async (h) => {
    const { client } = h.engine;
    const { execId } = await client.trigger("main", {});
    await waitForStatus(h, execId, "WAITING");
    const before = (await client.events(execId)).length;
    await client.signal(execId, "other", { n: 1 });
    // The signal is handled (acknowledged) well within this; the execution stays parked as it was.
    await new Promise((r) => setTimeout(r, 2_000));
    const types = (await client.events(execId)).map((e) => e.type);
    assert.equal(types.length, before, types.join(", "));
    await client.signal(execId, "go", { n: 2 });
    const state = await client.waitForEnd(execId, 15_000);
    assert.deepEqual(state.output, { got: 2 });
  });
});

Deno.test("a signal too large for the wait's record is refused; the wait goes on and takes the next", async () => {
  await withEngine(WAIT, async (h) => {
    const { client } = h.engine;
    const { execId } = await client.trigger("main", {});
    await waitForStatus(h, execId, "WAITING");
    const maxPayload = h.nc.info!.max_payload;
    // Sent as a client of NATS may: under max_payload, over what a recorded event may carry (max_payload less
    // the bus's room for headers).
    const big = { n: 0, pad: "x".repeat(maxPayload - 8 * 1024) };
    const signal = create(WorkflowSignalSchema, {
      metadata: h.bus.metadata(execId),
      workflow: { id: "main", execId },
      signalId: "go",
      payloadJson: new TextEncoder().encode(JSON.stringify(big)),
    });
    const data = encode(WorkflowSignalSchema, signal);
    assert.ok(data.length < maxPayload);
    await h.bus.js.publish(`compozy.${execId}.workflow.cmds.${execId}.signal`, data);
    await new Promise((r) => setTimeout(r, 3_000));
    const types = (await client.events(execId)).map((e) => e.type);
    assert.ok(!types.includes("workflow.taken_over"), types.join(", "));
    assert.equal((await client.get(execId))?.status, "WAITING");
    await client.signal(execId, "go", { n: 2 });
    const state = await client.waitForEnd(execId, 15_000);
    assert.deepEqual(state.output, { got: 2 });
  });
});

Deno.test({
  name:
    "B6: a signal repeating the one that ended a wait, sent while the execution is parked, writes nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const wf = `tasks:
  - { id: w1, type: wait, signal: go }
  - { id: s, type: sleep, duration: 3s }
  - { id: done, use: tool(id=echo), with: { v: 1 } }
`;
    await withEngine(wf, async (h) => {
      const { client } = h.engine;
      const { execId } = await client.trigger("main", {});
      await waitForStatus(h, execId, "WAITING");
      await client.signal(execId, "go", { n: 1 });
      // Parked in the sleep: the same signal again (a sender's retry).
      await until(async () =>
        (await client.events(execId)).some((e) =>
          e.type === "task.waiting_started" && (e.data as { task?: { id?: string } }).task?.id === "s"
        )
      );
      await until(() => Promise.resolve(h.engine.activeExecutions() === 0));
      const before = (await client.events(execId)).filter((e) => e.type === "workflow.taken_over").length;
      await client.signal(execId, "go", { n: 1 });
      const state = await client.waitForEnd(execId, 20_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      const after = (await client.events(execId)).filter((e) => e.type === "workflow.taken_over").length;
      // Before the fix: one more take-over, written by the repeated signal. The sleep's wake-up takes back the
      // lease this engine parked, and appends none either (it appended one before signal_flood_test's fix).
      assert.equal(after, before, `take-overs ${before} -> ${after}`);
    });
  },
});
