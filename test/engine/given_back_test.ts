/**
 * An execution accepted by engine A but first driven by engine B, which recorded a step and gave its command
 * back (a nak) within the ack wait, is taken over by A, not run as fresh: A's orchestrator remembers it
 * accepted the execution, and before, A skipped the history and ran the recorded step again. Two engines on
 * one real nats-server (in one process), the scripted runtime.
 */
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { type EngineHandle, startEngine } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { BUCKETS, Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { scriptedRuntime, writeProject } from "../support/engine.ts";
import { projectWith } from "../support/flows.ts";
import { startTestNats } from "../support/nats.ts";

const WORKFLOW = `tasks:
  - { id: first, use: tool(id=echo), with: { v: 1 } }
  - { id: second, use: tool(id=block), with: { v: 2 } }
`;

Deno.test("an execution another engine drove and gave back within the ack wait is taken over, not run afresh", async () => {
  const dir = await writeProject(projectWith(WORKFLOW, ["echo", "block"]));
  const project = await loadProject(dir);
  const nats = await startTestNats();
  const ncA = await connectNats(nats.url, { name: "engine-a", role: "engine" });
  const ncB = await connectNats(nats.url, { name: "engine-b", role: "engine" });
  await provisionJetStream(ncA);
  // A long ack wait: the redelivery after B's nak comes well within it (as it does within the 3 s default).
  const start = (nc: typeof ncA, instanceId: string) =>
    startEngine({ nc, bus: new Bus(nc, { source: "engine" }), project, instanceId, ackWaitMs: 60_000 });
  const engines: EngineHandle[] = [];
  const echoes = new Map<string, number>();
  const blocked = new Set<string>();
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const runtime = scriptedRuntime(new Bus(ncA, { source: "engine" }), {
    echo: (input, call) => {
      const execId = call.workflow!.execId;
      echoes.set(execId, (echoes.get(execId) ?? 0) + 1);
      return input;
    },
    block: async (input, call) => {
      blocked.add(call.workflow!.execId);
      await released;
      return input;
    },
  });
  try {
    const a = await start(ncA, "engine-a");
    engines.push(a);
    const b = await start(ncB, "engine-b");
    engines.push(b);
    const leases = await new Kvm(ncA).open(BUCKETS.leases);
    const execIds: string[] = [];
    // Executions A accepted and B drives: B took them over (it did not accept them) and holds their lease.
    const givenToB: string[] = [];
    for (let round = 0; round < 8 && givenToB.length === 0; round++) {
      const batch: string[] = [];
      for (let i = 0; i < 8; i++) batch.push((await a.client.trigger("main", {})).execId);
      execIds.push(...batch);
      const deadline = Date.now() + 30_000;
      while (!batch.every((id) => blocked.has(id))) {
        assert.ok(Date.now() < deadline, "every execution reaches its second step");
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const id of batch) {
        const types = (await a.client.events(id)).map((e) => e.type);
        if ((await leases.get(id))?.string() === "engine-b" && types.includes("workflow.taken_over")) {
          givenToB.push(id);
        }
      }
    }
    assert.ok(givenToB.length > 0, "some execution accepted by A is driven by B");
    // B loses those leases (their entries name an engine that is gone): it gives its drivers up and sends the
    // commands back. Stopped, B takes no more deliveries, so A gets them, within the ack wait of accepting.
    for (const id of givenToB) await leases.put(id, new TextEncoder().encode("engine-gone"));
    await b.stop();
    engines.splice(engines.indexOf(b), 1);
    const deadline = Date.now() + 60_000;
    for (const id of givenToB) {
      while ((await leases.get(id))?.string() !== "engine-a") {
        assert.ok(Date.now() < deadline, `${id} is taken by A`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    release();
    for (const id of execIds) {
      const state = await a.client.waitForEnd(id, 60_000);
      assert.equal(state.status, "SUCCESS", `${id}: ${JSON.stringify(state.error)}`);
    }
    for (const id of givenToB) {
      assert.equal(echoes.get(id), 1, `${id}: its first step, recorded by B, ran again`);
      const successes = (await a.client.events(id)).filter((e) => e.type === "task.success");
      assert.equal(successes.length, 2, `${id}: ${successes.map((e) => JSON.stringify(e)).join(", ")}`);
    }
  } finally {
    release();
    runtime.stop();
    for (const engine of engines) await engine.stop();
    await ncA.close();
    await ncB.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
