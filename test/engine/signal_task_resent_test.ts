/**
 * A signal task sent again by the replay of its attempt (its success could not be stored: a crash or a lost
 * lease between the send and the record) is delivered once. The signal's message had a new id on each send,
 * so a target with a second wait for the same signal took the copy as a second signal (exactly-once: a
 * Temporal signal from a workflow is deduplicated by its request id). Real nats-server and engine; the
 * failed write of the success is injected.
 */
import assert from "node:assert/strict";
import { type BusMessage, PublishError } from "../../pkg/nats/mod.ts";
import { TaskExecutionSuccessSchema } from "../../pkg/pb/mod.ts";
import { run, waitForStatus } from "../support/flows.ts";
import { scriptedRuntime, startEngineHarness } from "../support/engine.ts";

Deno.test({
  name: "a signal task replayed after its success was not stored delivers its signal once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness({
      "compozy.yaml": "name: sig\nworkflows:\n  - source: ./waiter.yaml\n  - source: ./main.yaml\n",
      "waiter.yaml": `id: waiter
tasks:
  - { id: first, type: wait, signal: go }
  - { id: second, type: wait, signal: go }
`,
      "main.yaml": `id: main
tasks:
  - id: s
    type: signal
    signal: { id: go, payload: { n: 1 } }
    target: "{{ .workflow.input.target }}"
`,
    });
    try {
      const { client } = h.engine;
      const waiter = (await client.trigger("waiter", {})).execId;
      await waitForStatus(h, waiter, "WAITING");
      let refused = 0;
      const publish = h.bus.publish.bind(h.bus);
      h.bus.publish = async (message: BusMessage, options) => {
        if (
          message.$typeName === TaskExecutionSuccessSchema.typeName && message.task?.id === "s" &&
          refused++ === 0
        ) {
          // The signal went out; its task's success cannot be written (a lease that ran out, a crash).
          throw new PublishError("the test holds the success back", "task.success", 1);
        }
        return await publish(message, options);
      };
      const state = await run(h, { target: waiter });
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.ok(refused >= 2, `the signal task ran again (${refused} successes)`);
      // The one signal sent ends `first` only; before the fix its copy ended `second` too.
      await new Promise((r) => setTimeout(r, 1_000));
      const w = await client.get(waiter);
      assert.deepEqual(
        w?.tasks.map((t) => `${t.task_id}:${t.status}`),
        ["first:SUCCESS", "second:WAITING"],
      );
      assert.equal(w?.status, "WAITING");
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "signal tasks of two collection items and of two composite attempts each deliver their own signal",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness({
      "compozy.yaml": "name: sig\nworkflows:\n  - source: ./waiter.yaml\n  - source: ./main.yaml\n",
      "waiter.yaml": `id: waiter
tasks:
  - id: all
    type: parallel
    tasks:
      - { id: w1, type: wait, signal: go, condition: "{{ .signal.payload.n == 1 }}" }
      - { id: w2, type: wait, signal: go, condition: "{{ .signal.payload.n == 2 }}" }
      - id: twice
        type: composite
        tasks:
          - { id: w3, type: wait, signal: go, condition: "{{ .signal.payload.n == 3 }}" }
          - { id: w4, type: wait, signal: go, condition: "{{ .signal.payload.n == 3 }}" }
`,
      "t.ts": "export default (input: unknown) => input;\n",
      "main.yaml": `id: main
tools:
  - { id: boom, execute: ./t.ts }
tasks:
  - id: each
    type: collection
    mode: sequential
    items: [1, 2]
    task:
      id: s
      type: signal
      signal: { id: go, payload: { n: "{{ .item }}" } }
      target: "{{ .workflow.input.target }}"
  - id: c
    type: composite
    # The back-off gives the waiter time to start w4 after w3 took the first attempt's signal.
    retry: { max_attempts: 2, backoff: { initial: 1s, max: 1s, factor: 1 } }
    tasks:
      - { id: cs, type: signal, signal: { id: go, payload: { n: 3 } }, target: "{{ .workflow.input.target }}" }
      - { id: gate, use: tool(id=boom) }
`,
    });
    const runtime = scriptedRuntime(h.bus, {
      boom: () => {
        throw new Error("boom");
      },
    });
    try {
      const { client } = h.engine;
      const waiter = (await client.trigger("waiter", {})).execId;
      await waitForStatus(h, waiter, "WAITING");
      const state = await run(h, { target: waiter });
      // `gate`'s tool fails: the composite's first attempt fails, its second too.
      assert.equal(state.status, "FAILED", JSON.stringify(state));
      const w = await client.waitForEnd(waiter, 10_000);
      assert.equal(w.status, "SUCCESS");
    } finally {
      runtime.stop();
      await h.close();
    }
  },
});
