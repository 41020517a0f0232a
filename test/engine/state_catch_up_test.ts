/**
 * An execution's state catches up with its history when the fold of its end never lands (issue 12): in
 * test/e2e/cluster_test.ts (ci38f) one execution's `workflow.success` was stored as the stream leader was
 * killed, and its document stayed RUNNING for good: nothing but the state folder's one delivery of the end
 * would ever write it. Here the state folder role is held by a folder that folds nothing (a holder whose
 * consumer stopped delivering: it answers its presence, so no engine takes the role), so the engine's own
 * state manager never folds. The end must still reach the document, with its tasks', within a bound far
 * below what a folder's return would take: from the driver that recorded the end, and from a later command
 * for an execution whose end was recorded by no driver (a give-up, an orphan's failure).
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { startEngine } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { EnginePresence } from "../../engine/engine_presence.ts";
import { Leases } from "../../engine/leases.ts";
import { ExclusiveRole } from "../../engine/state/exclusive_role.ts";
import { STATE_FOLDER_ROLE } from "../../engine/state/state_manager.ts";
import { BUCKETS, Bus, connectNats, provisionJetStream, STREAMS } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { scriptedRuntime, writeProject } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";

/** Generous: the state folder's own return would take for ever here; the catch-up takes seconds. */
const BOUND_MS = 20_000;

Deno.test({
  name: "state: the end reaches the document although the state folder never folds it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await writeProject({
      "compozy.yaml": "name: catch-up\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml": `id: wf
tools:
  - id: echo
    execute: ./t.ts
tasks:
  - id: step
    use: tool(id=echo)
    with: { n: 1 }
  - { id: hold, type: wait, signal: go }
outputs:
  n: "{{ .tasks.step.output.n }}"
`,
      "t.ts": "export default (input: unknown) => input;\n",
    });
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "state-catch-up", role: "engine" });
    const stops: Array<() => Promise<void> | void> = [];
    try {
      await provisionJetStream(nc);
      const bus = new Bus(nc, { source: "engine" });
      // The stalled folder: it holds the role and answers its presence, and folds nothing.
      const presence = new EnginePresence(nc);
      const answer = presence.answer("stalled-folder");
      stops.push(() => answer.unsubscribe());
      const leaseKv = await new Kvm(nc).open(BUCKETS.leases);
      const leases = new Leases(
        leaseKv,
        "stalled-folder",
        (await leaseKv.status()).ttl,
        presence,
        jetstream(nc),
      );
      const stalled = new ExclusiveRole(
        leases,
        STATE_FOLDER_ROLE,
        () => Promise.resolve({ stop: async () => {} }),
      );
      await stalled.start();
      stops.push(() => stalled.stop());
      // The check's bound (15 s by default) cut to keep the test short: what is tested is that it ends.
      const engine = await startEngine({
        nc,
        bus,
        project: await loadProject(dir),
        instanceId: "engine-test",
        stateCatchUpMs: 1_000,
        // A check that fails comes back once, then its command is given up (the last step).
        redelivery: { failed: 1 },
      });
      stops.push(() => engine.stop());
      const runtime = scriptedRuntime(bus, { echo: (input) => input });
      stops.push(() => runtime.stop());
      const client = engine.client;

      // Both executions wait, then both end at once: their checks run side by side.
      const recorded = (await client.trigger("wf", {})).execId;
      const givenUp = (await client.trigger("wf", {})).execId;
      await untilWaiting(client, recorded);
      await untilWaiting(client, givenUp);
      await client.signal(recorded, "go", {});
      // Recorded as a command's give-up records it (workflow_executor.ts, giveUp): by no driver.
      await bus.publish(create(pb.WorkflowExecutionFailedSchema, {
        metadata: bus.metadata(givenUp, `${givenUp}:failed`),
        workflow: { id: "wf", execId: givenUp },
        error: { message: "a command could not be processed: test", code: "command_failed" },
      }));
      // A user who sees it RUNNING cancels it: the command finds the history ended.
      await client.cancel(givenUp);

      await t.step("the driver that recorded the end writes it when the folder did not", async () => {
        const state = await untilEnded(client, recorded);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state));
        assert.deepEqual(state.output, { n: 1 });
        // Its tasks' documents are written first: a query that sees the end sees them ended.
        assert.deepEqual(state.tasks.map((x) => [x.task_id, x.status]), [["step", "SUCCESS"], [
          "hold",
          "SUCCESS",
        ]]);
        const listed = await client.list({ workflowId: "wf", status: "SUCCESS" });
        assert.ok(listed.items.some((x) => x.exec_id === recorded), "listed under its end's status");
      });

      await t.step("a later command writes an end that no driver recorded", async () => {
        const state = await untilEnded(client, givenUp);
        assert.equal(state.status, "FAILED", JSON.stringify(state));
        assert.equal(state.error?.code, "command_failed");
      });

      await t.step(
        "a check that keeps failing gives its command up without recording a second end",
        async () => {
          const execId = (await client.trigger("wf", {})).execId;
          await untilWaiting(client, execId);
          // The execution documents' bucket refuses every write: none fits its message size.
          const jsm = await jetstreamManager(nc);
          const bucket = `KV_${BUCKETS.workflowExecutions}`;
          const { config } = await jsm.streams.info(bucket);
          await jsm.streams.update(bucket, { ...config, max_msg_size: 1 });
          try {
            const dead = (await jsm.streams.info(STREAMS.deadLetters)).state.messages;
            await client.signal(execId, "go", {});
            const deadline = Date.now() + BOUND_MS;
            while ((await jsm.streams.info(STREAMS.deadLetters)).state.messages === dead) {
              if (Date.now() > deadline) throw new Error(`the command of ${execId} was not given up`);
              await new Promise((r) => setTimeout(r, 100));
            }
          } finally {
            await jsm.streams.update(bucket, config);
          }
          const ends = (await client.events(execId)).filter((e) =>
            e.type.startsWith("workflow.") && e.type !== "workflow.started" &&
            e.type !== "workflow.taken_over"
          );
          assert.deepEqual(ends.map((e) => e.type), ["workflow.success"]);
        },
      );
    } finally {
      for (const stop of stops.reverse()) await stop();
      await nc.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

type Client = Awaited<ReturnType<typeof startEngine>>["client"];
type State = NonNullable<Awaited<ReturnType<Client["get"]>>>;

/**
 * The document as it is once ended, read until BOUND_MS. The orchestrator's first document (RUNNING) is
 * there from the trigger on; until the fix nothing else was ever written.
 */
async function untilEnded(client: Client, execId: string): Promise<State> {
  const deadline = Date.now() + BOUND_MS;
  let state = await client.get(execId);
  while (!state || !["SUCCESS", "FAILED", "CANCELED", "TIMED_OUT"].includes(state.status)) {
    if (Date.now() > deadline) {
      throw new Error(`execution ${execId} still ${state?.status} ${BOUND_MS} ms after its end was recorded`);
    }
    await new Promise((r) => setTimeout(r, 200));
    state = await client.get(execId);
  }
  return state;
}

/** Waits (as a user would, by reading the history) until the execution's wait is recorded. */
async function untilWaiting(client: Client, execId: string): Promise<void> {
  const deadline = Date.now() + BOUND_MS;
  while (!(await client.events(execId)).some((e) => e.type === "task.waiting_started")) {
    if (Date.now() > deadline) throw new Error(`execution ${execId} never waited`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
