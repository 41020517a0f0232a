/**
 * A tool call of a canceled execution is not sent again after the cancel (outside review E1): while no runtime
 * answered (one restarting), the engine kept sending the call through "no responders" after the execution was
 * recorded CANCELED, and the runtime that came up ran it, a side effect after the end. The execution's end now
 * stops its calls' sends. Real engine, real nats-server; the runtime starts only after the cancel.
 */
import assert from "node:assert/strict";
import { scriptedRuntime, startEngineHarness } from "../support/engine.ts";
import { projectWith } from "../support/flows.ts";

Deno.test("a call no runtime took is not sent again once its execution is canceled", async () => {
  const h = await startEngineHarness(
    projectWith("tasks:\n  - { id: a, use: tool(id=echo), with: { v: 1 } }\n"),
  );
  const calls: string[] = [];
  let runtime: { stop(): void } | undefined;
  try {
    const { execId } = await h.engine.client.trigger("main", {});
    // Sent at least once with no runtime to take it (no responders, sent again every second or so).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await h.engine.client.cancel(execId, "stop");
    assert.equal((await h.engine.client.waitForEnd(execId, 15_000)).status, "CANCELED");
    runtime = scriptedRuntime(h.bus, {
      echo: (input, call) => {
        calls.push(call.task!.id);
        return input;
      },
    });
    // Long enough for several of the old sends (one per "no responders" second) to reach the new runtime.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    assert.deepEqual(calls, [], "the call of the canceled execution ran");
    const types = (await h.engine.client.events(execId)).map((e) => e.type);
    assert.equal(types.at(-1), "workflow.canceled", types.join(", "));
  } finally {
    runtime?.stop();
    await h.close();
  }
});
