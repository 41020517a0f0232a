/**
 * A tool call sent again after its engine was SIGKILLed runs with the input its attempt started with, not a
 * new rendering of its `with` (leftover of issue 9): `{{ now() }}`, or anything that reads the clock or a
 * definition changed meanwhile, gave the re-sent call another input than the call the tool may have
 * completed half of. Real nats-server, real engine process.
 */
import assert from "node:assert/strict";
import { startCrashStack } from "../support/engine_process.ts";

Deno.test({
  name: "a call re-sent after a crash has the rendered input of the attempt that was started",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const calls: Array<{ attempt: number; input: unknown }> = [];
    let firstCall!: () => void;
    const firstCalled = new Promise<void>((r) => firstCall = r);
    const stack = await startCrashStack({
      "compozy.yaml": "name: crash\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml": `id: main
tools:
  - id: work
    execute: ./t.ts
tasks:
  - id: a
    use: tool(id=work)
    with: { at: "{{ now() }}", n: "{{ .workflow.input.n }}" }
`,
      "t.ts": "export default (input: unknown) => input;\n",
    }, {
      work: async (input, call) => {
        calls.push({ attempt: call.attempt, input });
        if (calls.length === 1) {
          firstCall();
          await new Promise(() => {}); // The engine dies while this call runs.
        }
        return input;
      },
    }, { instanceId: "e" });
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", { n: 7 });
      await firstCalled;
      await stack.killEngine();
      // now() renders another instant from here on.
      await new Promise((r) => setTimeout(r, 20));
      stack.restartEngine();
      const state = await client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(calls.map((c) => c.attempt), [1, 2]);
      // Before the fix: the second call's `at` was rendered again at the replay.
      assert.deepEqual(calls[1].input, calls[0].input);
      assert.deepEqual(state.output, calls[0].input);
    } finally {
      await stack.close();
    }
  },
});
