/**
 * A `signal` task whose look-up of the waiting executions NATS does not answer (its requests time out: the
 * server, or the engine's process, stalled for longer than a request's time limit). Seen in the two-engine
 * crash fuzz with freezes (seed 37214: the engine SIGSTOPped 6.7 s just after `send2` started; woken, its
 * pending KV read timed out and `send2` failed `internal_error` "timeout", failing the workflow, where the
 * reference says the workflow goes on). A write NATS does not acknowledge gives the execution up and replays
 * it (PublishError); a read NATS does not answer now does the same, instead of failing the task with NATS's
 * silence. Real nats-server (SIGSTOPped and SIGCONTed), real engine.
 */
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { uuidv7 } from "../../engine/ids.ts";
import { BUCKETS } from "../../pkg/nats/mod.ts";
import { projectWith } from "../support/flows.ts";
import { startEngineHarness } from "../support/engine.ts";

const SEND = `tasks:
  - id: send
    type: signal
    signal: { id: ping, payload: { x: 1 } }
`;

/** Listed waits of executions that do not exist: the look-up reads each one's document, one KV get each. */
const LISTED = 4_000;
/** Longer than a JetStream request's time limit (5 s): every read under way then times out. */
const STALL_MS = 6_500;

Deno.test({
  name: "a signal task whose look-up NATS leaves unanswered is replayed, not failed with 'timeout'",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness(projectWith(SEND), { ackWaitMs: 1_000 });
    try {
      const waiting = await new Kvm(h.nc).open(BUCKETS.waiting);
      for (let i = 0; i < LISTED; i++) await waiting.put(`ping.${uuidv7()}`, new Uint8Array());
      const client = h.engine.client;
      const { execId } = await client.trigger("main", {});
      // The look-up is under way once the task has started: it reads LISTED documents one by one.
      const deadline = Date.now() + 30_000;
      while (!(await client.events(execId)).some((e) => e.type === "task.started")) {
        assert.ok(Date.now() < deadline, "the signal task did not start in 30 s");
        await new Promise((r) => setTimeout(r, 20));
      }
      Deno.kill(h.nats.server.pid, "SIGSTOP");
      await new Promise((r) => setTimeout(r, STALL_MS));
      Deno.kill(h.nats.server.pid, "SIGCONT");
      const state = await client.waitForEnd(execId, 60_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error ?? state.tasks));
      assert.deepEqual(state.output, { signal: "ping", delivered: 0 });
    } finally {
      await h.close();
    }
  },
});
