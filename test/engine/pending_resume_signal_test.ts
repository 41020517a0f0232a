/**
 * A signal that activates a paused execution whose resume is pending (model seed 40, finding G9): the
 * activation applied the pending resume first, and the driver, idle once the resume was recorded, parked
 * while the resume's command was being removed from WORKFLOW_CMDS; the signal was then delivered to the parked
 * driver. Its wait's end was recorded, the lease released, and the flow went on from memory without a lease:
 * its next write was refused, and the execution stayed RUNNING for good (the signal acknowledged). Real
 * nats-server, real engine.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { startEngine } from "../../engine/mod.ts";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { projectWith, waitForStatus } from "../support/flows.ts";
import { startEngineHarness } from "../support/engine.ts";
import { until } from "../support/until.ts";

const WAIT = `tasks:
  - id: w
    type: wait
    signal: go
    condition: '{{ .signal.payload.ticket == "T1" }}'
  - { id: after, type: aggregate, outputs: { got: "{{ .tasks.w.output.ticket }}" } }
`;

Deno.test({
  name: "G9: a signal whose activation applies a pending resume first is taken, and the execution goes on",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness(projectWith(WAIT));
    let engine = h.engine;
    try {
      const { client } = h.engine;
      const { execId } = await client.trigger("main", {});
      await waitForStatus(h, execId, "WAITING");
      await client.pause(execId);
      await waitForStatus(h, execId, "PAUSED");
      // The pause handled and acknowledged, the execution parked: nothing of it is active.
      const jsm = await jetstreamManager(h.nc);
      const unacked = async () =>
        (await jsm.consumers.info(STREAMS.workflowCommands, "compozy-workflow-executor")).num_ack_pending;
      await until(async () => engine.activeExecutions() === 0 && await unacked() === 0);
      // Stopped, so that the next engine finds both commands at once: the signal first, its resume pending.
      await engine.stop();
      await client.signal(execId, "go", { ticket: "T1" });
      await client.resume(execId);
      engine = await startEngine({ nc: h.nc, bus: h.bus, project: h.project, instanceId: "engine-test" });
      const state = await engine.client.waitForEnd(execId, 20_000).catch(async (e) => {
        const history = (await engine.client.events(execId)).map((e) => e.type);
        throw new Error(`no end: ${history.join(", ")}`, { cause: e });
      });
      const history = (await engine.client.events(execId)).map((e) => e.type);
      assert.equal(state.status, "SUCCESS", `${JSON.stringify(state.error)}: ${history.join(", ")}`);
      assert.deepEqual(state.output, { got: "T1" });
    } finally {
      // The harness stops its own engine; a second one is stopped here.
      if (engine !== h.engine) await engine.stop();
      await h.close();
    }
  },
});
