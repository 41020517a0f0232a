/**
 * The end watch against a real nats-server, with the document reads scripted: the end is taken from a write
 * on the subject, from the one read, or from the read after a reconnect; a delete marker is no document;
 * a failed read is reported; a watch that runs out answers with the newest document it saw.
 */
import assert from "node:assert/strict";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { waitForTerminalDocument } from "../../engine/state/end_watch.ts";
import type { WorkflowDocument } from "../../engine/state/execution_state.ts";
import { connectNats } from "../../pkg/nats/mod.ts";
import { startTestNats } from "../support/nats.ts";

const SUBJECT = "$KV.test_bucket.exec-1";

function doc(status: string): WorkflowDocument {
  return { exec_id: "exec-1", workflow_id: "wf", status } as unknown as WorkflowDocument;
}

function write(nc: NatsConnection, status: string): void {
  nc.publish(SUBJECT, new TextEncoder().encode(JSON.stringify(doc(status))));
}

Deno.test("waitForTerminalDocument", async (t) => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "end-watch" });
  const writer = await connectNats(nats.url, { name: "end-watch-writer" });
  let reconnect: (() => void) | undefined;
  const base = {
    nc,
    subject: SUBJECT,
    onReconnect: (wake: () => void) => {
      reconnect = wake;
      return () => reconnect = undefined;
    },
  };
  try {
    await t.step("the end arrives as a write after the one read", async () => {
      let reads = 0;
      const waiting = waitForTerminalDocument({
        ...base,
        read: () => {
          reads++;
          // The document is written after the read answered RUNNING.
          setTimeout(() => {
            const h = headers();
            h.set("KV-Operation", "DEL");
            writer.publish(SUBJECT, new Uint8Array(), { headers: h });
            write(writer, "SUCCESS");
          }, 0);
          return Promise.resolve(doc("RUNNING"));
        },
      }, 30_000);
      assert.equal((await waiting)?.status, "SUCCESS");
      assert.equal(reads, 1);
      assert.equal(reconnect, undefined, "the reconnect hook is removed");
    });

    await t.step("an end already stored is the read's answer", async () => {
      const found = await waitForTerminalDocument(
        { ...base, read: () => Promise.resolve(doc("FAILED")) },
        30_000,
      );
      assert.equal(found?.status, "FAILED");
    });

    await t.step(
      "a write missed (on a cluster, a server that had not learnt of the subscription yet) is found by a later read",
      async () => {
        let reads = 0;
        // No write reaches the subscription: the second read finds the end.
        const found = await waitForTerminalDocument({
          ...base,
          read: () => Promise.resolve(doc(++reads === 1 ? "RUNNING" : "SUCCESS")),
        }, 60_000);
        assert.equal(found?.status, "SUCCESS");
        assert.equal(reads, 2);
      },
    );

    await t.step("after a reconnect the document is read again", async () => {
      let reads = 0;
      const waiting = waitForTerminalDocument({
        ...base,
        read: () => Promise.resolve(doc(++reads === 1 ? "RUNNING" : "CANCELED")),
      }, 30_000);
      while (!reconnect || reads === 0) await new Promise((r) => setTimeout(r, 5));
      reconnect();
      assert.equal((await waiting)?.status, "CANCELED");
      assert.equal(reads, 2);
    });

    await t.step("a failed read is reported and the write still ends the wait", async () => {
      const errors: unknown[] = [];
      const failed = await waitForTerminalDocument({
        ...base,
        read: () => {
          setTimeout(() => write(writer, "TIMED_OUT"), 0);
          return Promise.reject(new Error("NATS is down"));
        },
        onReadError: (e) => errors.push(e),
      }, 30_000);
      assert.equal(failed?.status, "TIMED_OUT");
      assert.equal(errors.length, 1);
    });

    await t.step("a watch that runs out answers with the newest document seen", async () => {
      const found = await waitForTerminalDocument({
        ...base,
        read: () => {
          setTimeout(() => write(writer, "WAITING"), 0);
          return Promise.resolve(doc("RUNNING"));
        },
      }, 200);
      assert.equal(found?.status, "WAITING");
      const none = await waitForTerminalDocument({ ...base, read: () => Promise.resolve(undefined) }, 50);
      assert.equal(none, undefined);
    });
  } finally {
    await writer.close();
    await nc.close();
    await nats.stop();
  }
});
