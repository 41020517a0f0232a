/**
 * A sub-workflow's start whose answer is lost, or refused because the orchestrator's own handler failed, has
 * an unknown outcome: it is not the parent task's failure. The parent is replayed and starts the child again
 * under the same idempotency key (model finding on seed 90030, test/engine/model/FINDINGS.md: with the engine
 * SIGSTOPped, "Request on '…trigger' was refused: timeout" failed the parent `internal_error`). A start that
 * never gets an answer ends the parent FAILED once the command's redelivery bound is spent, never a loop.
 * Real nats-server, real engine.
 */
import assert from "node:assert/strict";
import { type BusMessage, RequestError } from "../../pkg/nats/mod.ts";
import { WorkflowTriggerSchema } from "../../pkg/pb/mod.ts";
import { type EngineHarness, scriptedRuntime, startEngineHarness } from "../support/engine.ts";
import { projectWith } from "../support/flows.ts";

const WORKFLOW = `tasks:
  - id: sub
    use: workflow(id=child)
    with: { v: "{{ .workflow.input.v }}" }
`;

/**
 * Sub-workflow starts (triggers with a parent) go through `deliver` (the real request, or none) and then fail
 * as the orchestrator's handler failing on its own JetStream call answers them, for the first `count` starts.
 */
function refuseChildStarts(
  h: EngineHarness,
  count: number,
  deliver: boolean,
): { refused: () => number } {
  let refused = 0;
  const request = h.bus.request.bind(h.bus);
  h.bus.request = (async (message: BusMessage, replySchema, options) => {
    const isChildStart = message.$typeName === WorkflowTriggerSchema.typeName &&
      (message as { parent?: unknown }).parent !== undefined;
    if (!isChildStart || refused >= count) return await request(message, replySchema, options);
    refused++;
    if (deliver) await request(message, replySchema, options);
    throw new RequestError("Request on 'compozy.x.workflow.cmds.child.trigger' was refused: timeout", "x");
  }) as typeof h.bus.request;
  return { refused: () => refused };
}

async function withHarness(
  redelivery: { abandoned?: number },
  fn: (h: EngineHarness) => Promise<void>,
): Promise<void> {
  const h = await startEngineHarness(projectWith(WORKFLOW), { redelivery });
  const runtime = scriptedRuntime(h.bus, { echo: (input) => input });
  try {
    await fn(h);
  } finally {
    runtime.stop();
    await h.close();
  }
}

Deno.test({
  name:
    "a sub-workflow start whose answer was lost is sent again on a replay: one child, the parent succeeds",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withHarness({}, async (h) => {
      const fault = refuseChildStarts(h, 1, true);
      const { execId } = await h.engine.client.trigger("main", { v: "kept" });
      const state = await h.engine.client.waitForEnd(execId, 20_000);
      // Before the fix: FAILED internal_error "…was refused: timeout".
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.equal(fault.refused(), 1);
      // The first start did store the child; the replay's start found it by its idempotency key.
      const children = (await h.engine.client.list({ workflowId: "child" })).items;
      assert.equal(children.length, 1, JSON.stringify(children));
      const child = await h.engine.client.get(children[0].exec_id);
      assert.equal(child?.status, "SUCCESS");
      assert.deepEqual(state.output, child?.output);
      assert.deepEqual(child?.output, { v: "kept" });
    });
  },
});

Deno.test({
  name: "a sub-workflow start never answered ends the parent FAILED at the redelivery bound, not in a loop",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withHarness({ abandoned: 2 }, async (h) => {
      const fault = refuseChildStarts(h, Number.POSITIVE_INFINITY, false);
      const { execId } = await h.engine.client.trigger("main", { v: "lost" });
      const state = await h.engine.client.waitForEnd(execId, 20_000);
      assert.equal(state.status, "FAILED");
      assert.match(state.error!.message, /sub-workflow 'child' has no known outcome/);
      // The first activation and one per redelivery allowed.
      assert.equal(fault.refused(), 3);
      assert.equal((await h.engine.client.list({ workflowId: "child" })).items.length, 0);
    });
  },
});
