/**
 * An activation that takes longer than the command's ack wait keeps its command: the executor tells the
 * server it is still at work while it activates (claims the lease, reads the history), not only once the
 * driver runs. Before, at load, an activation of an execution another engine had held (a presence check, a
 * history read, a take-over, a second read, the pending controls) outlasted the 3 s ack wait, and its command
 * was delivered again meanwhile (0.13-0.54 redeliveries per workflow in `deno task bench cluster`, 2 + 2).
 *
 * Here the execution's lease is made another engine's ("engine-gone") while its first step runs: the engine
 * gives its driver up, the command comes back, and the activation asks whether that engine is gone, which a
 * stand-in presence answers only after four ack waits. One real nats-server, the scripted runtime.
 */
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { startEngine } from "../../engine/mod.ts";
import { ENGINE_STATS_SUBJECT, type EngineStatsReport } from "../../engine/engine_stats.ts";
import type { Presence } from "../../engine/engine_presence.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { BUCKETS, Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { scriptedRuntime, writeProject } from "../support/engine.ts";
import { projectWith } from "../support/flows.ts";
import { startTestNats } from "../support/nats.ts";

const ACK_WAIT_MS = 2_000;
/** How long the stand-in presence takes to say the other engine is gone: four ack waits. */
const ASKED_FOR_MS = 4 * ACK_WAIT_MS;

const WORKFLOW = `tasks:
  - { id: first, use: tool(id=block), with: { v: 1 } }
  - { id: second, use: tool(id=echo), with: { v: 2 } }
`;

Deno.test("an activation longer than the ack wait keeps its command (no redelivery while it activates)", async () => {
  const dir = await writeProject(projectWith(WORKFLOW, ["echo", "block"]));
  const project = await loadProject(dir);
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "engine-a", role: "engine" });
  await provisionJetStream(nc);
  const asked: string[] = [];
  const presence: Presence = {
    async isGone(instanceId) {
      asked.push(instanceId);
      await new Promise((r) => setTimeout(r, ASKED_FOR_MS));
      return instanceId === "engine-gone";
    },
    isPresent: () => Promise.resolve(true),
  };
  const bus = new Bus(nc, { source: "engine" });
  const engine = await startEngine({
    nc,
    bus,
    project,
    instanceId: "engine-a",
    ackWaitMs: ACK_WAIT_MS,
    presence,
  });
  let blockCalls = 0;
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const runtime = scriptedRuntime(new Bus(nc, { source: "engine" }), {
    echo: (input) => input,
    // The first call waits until the execution was taken back; the replay's call returns at once.
    block: async (input) => {
      if (++blockCalls === 1) await released;
      return input;
    },
  });
  try {
    const { execId } = await engine.client.trigger("main", {});
    const leases = await new Kvm(nc).open(BUCKETS.leases);
    const deadline = Date.now() + 60_000;
    while (blockCalls === 0) {
      assert.ok(Date.now() < deadline, "the first step is called");
      await new Promise((r) => setTimeout(r, 50));
    }
    // Another engine's now: the next renewal finds it lost, the driver is given up and its command comes back.
    await leases.put(execId, new TextEncoder().encode("engine-gone"));
    // The replay's call of the first step: the engine took the lease back from engine-gone and activated it.
    while (blockCalls < 2) {
      assert.ok(Date.now() < deadline, "the engine takes the execution back from engine-gone");
      await new Promise((r) => setTimeout(r, 100));
    }
    release();
    const state = await engine.client.waitForEnd(execId, 60_000);
    assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
    assert.deepEqual(asked, ["engine-gone"], "the activation asked whether engine-gone is gone");
    const reply = await nc.request(ENGINE_STATS_SUBJECT, undefined, { timeout: 10_000 });
    const stats = reply.json<EngineStatsReport>();
    // One redelivery: the command given back when the driver was given up. Without heartbeats during the
    // activation, each ack wait of it brought one more (the activation lasts four).
    assert.equal(stats.redeliveries, 1, `redeliveries: ${stats.redeliveries}`);
  } finally {
    release();
    runtime.stop();
    await engine.stop();
    await nc.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
