/**
 * The task documents a start-and-wait collects from their writes (engine/state/task_watch.ts), on a real
 * nats-server: a refused write that arrives late never replaces a later document, and a task not seen (or
 * deleted) leaves the answer to the reads.
 */
import assert from "node:assert/strict";
import { headers } from "@nats-io/transport-node";
import { watchTasks } from "../../engine/state/task_watch.ts";
import { connectNats } from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";

const prefix = "$KV.compozy_task_executions.exec-1.";
const doc = (id: string, status: string, seq: number) => ({
  task_id: id,
  exec_id: id,
  status,
  output: null,
  error: null,
  attempts: 1,
  started_at: null,
  ended_at: null,
  seq,
});

Deno.test("a task watch", async (t) => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "watcher" });
  const writer = await connectNats(nats.url, { name: "state-manager" });
  const encoder = new TextEncoder();
  const write = (id: string, body: unknown) =>
    writer.publish(prefix + id, encoder.encode(JSON.stringify(body)));
  try {
    await t.step("keeps the document folded from the latest event, whatever arrives last", async () => {
      const watch = watchTasks(nc, prefix);
      await nc.flush();
      write("a", doc("a", "RUNNING", 3));
      write("a", doc("a", "SUCCESS", 7));
      // Another engine's write, refused by the bucket (behind by a revision), still reaches core subscribers.
      write("a", doc("a", "RUNNING", 5));
      write("b", doc("b", "FAILED", 9));
      await writer.flush();
      await nc.flush();
      assert.deepEqual(watch.documents(["a", "b"])?.map((d) => [d.exec_id, d.status]), [
        ["a", "SUCCESS"],
        ["b", "FAILED"],
      ]);
      assert.equal(watch.documents(["a", "b", "c"]), undefined, "a task never written is read");
      assert.equal(watch.documents(undefined), undefined, "an execution that lists no tasks is read");
      watch.stop();
    });

    await t.step("a deleted document is read", async () => {
      const watch = watchTasks(nc, prefix);
      await nc.flush();
      write("a", doc("a", "SUCCESS", 7));
      const h = headers();
      h.set("KV-Operation", "DEL");
      writer.publish(prefix + "a", new Uint8Array(), { headers: h });
      await writer.flush();
      await nc.flush();
      assert.equal(watch.documents(["a"]), undefined);
      watch.stop();
    });
  } finally {
    await writer.close();
    await nc.close();
    await nats.stop();
  }
});
