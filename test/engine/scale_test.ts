/** Many executions at once, and bad input that must not harm them. */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { DLQ_REASON_HEADER, STREAMS } from "../../pkg/nats/mod.ts";
import { WorkflowExecuteSchema } from "../../pkg/pb/mod.ts";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { startEngineHarness } from "../support/engine.ts";

const project = {
  "compozy.yaml": "name: scale\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: three
tools:
  - id: step
    execute: ./step.ts
tasks:
  - id: a
    use: tool(id=step)
    with: { n: "{{ .workflow.input.n }}" }
  - id: b
    use: tool(id=step)
    with: { n: "{{ .tasks.a.output.n }}" }
  - id: c
    use: tool(id=step)
    with: { n: "{{ .tasks.b.output.n }}" }
`,
  "step.ts": "export default (input: { n: number }) => ({ n: input.n + 1 });\n",
};

Deno.test({
  name: "1,000 concurrent executions of a 3-task workflow all succeed through the sandbox",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness(project);
    const runtime = startRuntime({ nc: h.nc, bus: h.bus });
    try {
      const ids = await Promise.all(
        Array.from({ length: 1_000 }, async (_, n) => (await h.engine.client.trigger("three", { n })).execId),
      );
      const states = await Promise.all(ids.map((id) => h.engine.client.waitForEnd(id, 120_000)));
      const failed = states.filter((s) => s.status !== "SUCCESS");
      assert.deepEqual(failed.map((s) => [s.exec_id, s.status, s.error]), []);
      states.forEach((s, n) => assert.deepEqual(s.output, { n: n + 3 }));
    } finally {
      await runtime.stop();
      await h.close();
    }
  },
});

Deno.test("a poisoned command is dead-lettered and the engine goes on", async () => {
  const h = await startEngineHarness(project);
  const runtime = startRuntime({ nc: h.nc, bus: h.bus });
  try {
    const corr = crypto.randomUUID();
    // Bytes that are not a WorkflowExecute, on an execute subject; and a valid command for no execution.
    await h.bus.publishRaw(
      `compozy.${corr}.workflow.cmds.${corr}.execute`,
      new Uint8Array([0x0a, 0xff, 0xff]),
    );
    await h.bus.publish(create(WorkflowExecuteSchema, {
      metadata: h.bus.metadata(corr),
      workflow: { id: "three", execId: corr },
    }));
    const { execId } = await h.engine.client.trigger("three", { n: 1 });
    assert.equal((await h.engine.client.waitForEnd(execId, 30_000)).status, "SUCCESS");
    const jsm = await jetstreamManager(h.nc);
    const dead = await jsm.streams.getMessage(STREAMS.deadLetters, {
      last_by_subj: "compozy.dlq.workflow.cmds",
    });
    assert.match(dead!.header.get(DLQ_REASON_HEADER), /as compozy\.v1\.WorkflowExecute/);
    assert.equal(await h.engine.client.get(corr), undefined);
  } finally {
    await runtime.stop();
    await h.close();
  }
});
