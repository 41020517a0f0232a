/**
 * The harness's checkpoints on a real stack (nats-server, engine, runtime): a checkpoint whose wait ended by
 * its own time-out before the harness saw it waiting is passed, as the reference says that wait ends anyway.
 * Seed 38210 (two engines, freezes): a 300 ms wait, taken over, waited 11 ms between two of the harness's
 * polls; the harness waited 240 s for it ("checkpoint not reached (time-out): wait1: FAILED") and never sent
 * the next checkpoint's signal, so the execution stayed WAITING. Here the harness is held back until the
 * wait has timed out.
 */
import assert from "node:assert/strict";
import { expectedOf } from "./cases.ts";
import { differences } from "./compare.ts";
import { startStack } from "./engine_run.ts";
import type { Case } from "./generator.ts";

const shortWait: Case = {
  seed: 1,
  id: "c1",
  workflows: {
    c1: {
      id: "c1",
      tasks: [
        {
          id: "wait1",
          type: "wait",
          signal: "c1-s1",
          condition: '{{ .signal.payload.ticket == "T1" }}',
          timeout: "300ms",
          on_timeout: "wait2",
        },
        { id: "wait2", type: "wait", signal: "c1-s2" },
      ],
    },
  },
  input: {},
  plan: {
    wait1: [{ kind: "signal", signal: "c1-s1", payload: { ticket: "nope" }, broadcast: false }],
    wait2: [{ kind: "signal", signal: "c1-s2", payload: { ticket: "T2" }, broadcast: false }],
  },
};

Deno.test({
  name: "model harness: a checkpoint whose wait timed out before the harness saw it is passed",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const expected = await expectedOf(shortWait);
    assert.deepEqual(expected.checkpoints.map((c) => c.waiting), [["wait1"], ["wait2"]]);
    assert.equal(expected.tasks.wait1?.code, "wait_timeout");
    const stack = await startStack([shortWait], {
      beforeCheckpoint: async (execId, index) => {
        if (index !== 0) return;
        const deadline = Date.now() + 60_000;
        while (
          (await stack.client.get(execId))?.tasks.find((t) => t.task_id === "wait1")?.status !== "FAILED"
        ) {
          assert.ok(Date.now() < deadline, "wait1 did not time out in 60 s");
          await new Promise((r) => setTimeout(r, 25));
        }
      },
    });
    try {
      const observed = await stack.run(shortWait, expected);
      assert.deepEqual(differences(expected, observed, false), []);
      assert.equal(observed.state.status, "SUCCESS");
    } finally {
      await stack.close();
    }
  },
});
