/**
 * A task's time-out that reaches a replay before the replay reaches its attempt is applied once the attempt's
 * recorded part is replayed, not before (model finding G12): an attempt whose work all ended before its
 * deadline, only its own outcome unrecorded when its engine gave it up, succeeds as it would have without the
 * give-up. Real nats-server, real engine.
 */
import assert from "node:assert/strict";
import { type BusMessage, PublishError } from "../../pkg/nats/mod.ts";
import { TaskExecutionSuccessSchema } from "../../pkg/pb/mod.ts";
import type { EngineHarness } from "../support/engine.ts";
import { withEngine } from "../support/flows.ts";

/** The first `task.success` of task `key` is not stored, as if the engine died just before storing it. */
function loseFirstSuccessOf(h: EngineHarness, key: string): { lost: () => boolean } {
  let lost = false;
  const publish = h.bus.publish.bind(h.bus);
  h.bus.publish = (message: BusMessage, options) => {
    const task = message.$typeName === TaskExecutionSuccessSchema.typeName
      ? (message as { task?: { id?: string } }).task?.id
      : undefined;
    if (task === key && !lost) {
      lost = true;
      return Promise.reject(new PublishError("the engine died before the task's end", "lost", 1));
    }
    return publish(message, options);
  };
  return { lost: () => lost };
}

Deno.test({
  name:
    "a composite whose children ended before its time-out succeeds on the replay its overdue time-out starts",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The driver is given up when k's success cannot be stored; its execute command comes back a second
    // later, after k's 300 ms time-out, whose timer then starts the replay. Applied as soon as the replay armed
    // k's attempt, the time-out failed k: the replay of k1's recorded success had not reached k's end yet.
    const wf = `tasks:
  - id: k
    type: composite
    timeout: 300ms
    tasks:
      - { id: k1, use: tool(id=echo), with: { v: 1 } }
    on_error: { next: h }
  - { id: ok, type: aggregate, outputs: { v: ok }, final: true }
  - { id: h, type: aggregate, outputs: { code: "{{ .error.code }}" }, final: true }
`;
    await withEngine(wf, async (h) => {
      const fault = loseFirstSuccessOf(h, "k");
      const { execId } = await h.engine.client.trigger("main", {});
      const state = await h.engine.client.waitForEnd(execId, 20_000);
      assert.ok(fault.lost(), "k's first success was not withheld");
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(
        state.output,
        { v: "ok" },
        JSON.stringify(state.tasks.map((t) => [t.task_id, t.status])),
      );
    });
  },
});

/**
 * Like loseFirstSuccessOf, and the next `task.success` of `key` (the replay's) is stored `delayMs` late, as
 * on a loaded machine or a remote NATS: one macrotask is no bound on a write's round trip.
 */
function loseThenDelaySuccessOf(h: EngineHarness, key: string, delayMs: number): { lost: () => boolean } {
  let seen = 0;
  const publish = h.bus.publish.bind(h.bus);
  h.bus.publish = (message: BusMessage, options) => {
    const task = message.$typeName === TaskExecutionSuccessSchema.typeName
      ? (message as { task?: { id?: string } }).task?.id
      : undefined;
    if (task === key && ++seen === 1) {
      return Promise.reject(new PublishError("the engine died before the task's end", "lost", 1));
    }
    if (task === key) return new Promise((r) => setTimeout(r, delayMs)).then(() => publish(message, options));
    return publish(message, options);
  };
  return { lost: () => seen > 0 };
}

/** Runs `wf`, losing then delaying the success of `key`; the workflow must take k's success (`{ v: ok }`). */
async function succeedsDespiteDelayedReplayWrite(wf: string, key: string): Promise<void> {
  await withEngine(wf, async (h) => {
    const fault = loseThenDelaySuccessOf(h, key, 150);
    const { execId } = await h.engine.client.trigger("main", {});
    const state = await h.engine.client.waitForEnd(execId, 20_000);
    assert.ok(fault.lost(), `${key}'s first success was not withheld`);
    assert.deepEqual(
      state.output,
      { v: "ok" },
      JSON.stringify(state.tasks.map((t) => [t.task_id, t.status, t.error?.code])),
    );
  });
}

// brkE: the replay of what an attempt recorded is not always write-free. A child whose end was recorded as a
// wake-up (a sleep, a sub-workflow), or a nested container whose children all ended, has its own success
// stored by the replay; when that write outlasts one macrotask, k's time-out applies in the middle and k
// fails task_timeout although everything in it ended before its deadline (and k/nap or k/in reads SUCCESS).
Deno.test({
  name:
    "a composite whose sleep woke before its time-out succeeds though the replay stores the sleep's end late",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await succeedsDespiteDelayedReplayWrite(
      `tasks:
  - id: k
    type: composite
    timeout: 300ms
    tasks:
      - { id: nap, type: sleep, duration: 50ms }
    on_error: { next: h }
  - { id: ok, type: aggregate, outputs: { v: ok }, final: true }
  - { id: h, type: aggregate, outputs: { code: "{{ .error.code }}" }, final: true }
`,
      "k/nap",
    );
  },
});

Deno.test({
  name:
    "a composite whose inner composite ended before its time-out succeeds though the replay stores it late",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await succeedsDespiteDelayedReplayWrite(
      `tasks:
  - id: k
    type: composite
    timeout: 300ms
    tasks:
      - id: in
        type: composite
        tasks:
          - { id: k1, use: tool(id=echo), with: { v: 1 } }
    on_error: { next: h }
  - { id: ok, type: aggregate, outputs: { v: ok }, final: true }
  - { id: h, type: aggregate, outputs: { code: "{{ .error.code }}" }, final: true }
`,
      "k/in",
    );
  },
});
