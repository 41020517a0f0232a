/**
 * A broadcast lists the executions waiting for its signal, then signals each. One of them may end in between
 * (its wait's time-out, a cancel): it was signaled through the API's own path, which reads the execution again
 * and refuses an ended one (ExecutionConflictError), so the whole broadcast failed and the executions listed
 * after it were never signaled. Here the first listed execution is canceled and ended right after the listing.
 * Real nats-server, real engine.
 */
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { openStateStore, startEngine } from "../../engine/mod.ts";
import { NatsExecutionClient } from "../../engine/execution_client.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { projectWith } from "../support/flows.ts";
import { writeProject } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";
import { until } from "../support/until.ts";

Deno.test({
  name: "a broadcast reaches the executions listed after one that ended since the listing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await writeProject(projectWith(`tasks:
  - { id: w, type: wait, signal: go }
  - { id: after, type: aggregate, outputs: { got: "{{ .tasks.w.output.n }}" } }
`));
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "engine-test", role: "engine" });
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "engine" });
    const project = await loadProject(dir);
    const engine = await startEngine({ nc, bus, project, instanceId: "engine-test" });
    try {
      const first = (await engine.client.trigger("main", {})).execId;
      const second = (await engine.client.trigger("main", {})).execId;
      const store = await openStateStore(nc);
      await until(async () => (await store.findWaiting("go")).length === 2, 30_000);
      // The broadcast's listing, then the first listed execution ends before it is signaled.
      const findWaiting = store.findWaiting.bind(store);
      let ended = "";
      store.findWaiting = async (signalId) => {
        const listed = await findWaiting(signalId);
        ended = listed[0].exec_id;
        await engine.client.cancel(ended, "ends between the listing and the signal");
        assert.equal((await engine.client.waitForEnd(ended, 30_000)).status, "CANCELED");
        return listed;
      };
      const client = new NatsExecutionClient(bus, jetstream(nc), store, project);
      const delivered = await client.broadcastSignal("go", { n: 7 });
      const open = ended === first ? second : first;
      assert.ok(delivered.includes(open), `delivered to ${delivered.join(", ")}`);
      const state = await engine.client.waitForEnd(open, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(state.output, { got: 7 });

      // A broadcast retried with the same Idempotency-Key (the route's delivery id) goes to the executions the
      // first went to and answers as the first did (docs/api.md). Before (eng45) it looked them up again: an
      // execution that started waiting since was listed instead, and took the retry's signal.
      store.findWaiting = findWaiting;
      const a = (await engine.client.trigger("main", {})).execId;
      await until(async () => (await store.findWaiting("go")).some((d) => d.exec_id === a), 30_000);
      const firstSent = await client.broadcastSignal("go", { n: 1 }, "broadcast:go:K");
      assert.deepEqual(firstSent, [a]);
      assert.deepEqual((await engine.client.waitForEnd(a, 30_000)).output, { got: 1 });
      const b = (await engine.client.trigger("main", {})).execId;
      await until(async () => (await store.findWaiting("go")).some((d) => d.exec_id === b), 30_000);
      assert.deepEqual(await client.broadcastSignal("go", { n: 2 }, "broadcast:go:K"), firstSent);
      await engine.client.signal(b, "go", { n: 3 });
      assert.deepEqual((await engine.client.waitForEnd(b, 30_000)).output, { got: 3 });
    } finally {
      await engine.stop();
      await nc.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
