import assert from "node:assert/strict";
import { addressOf, idsOf } from "./log_address.ts";

const process = { component: "engine", instanceId: "p-1" } as const;
const exec = "0193f0a4-7b3c-7d2e-9a41-6c0f3b2a1e55";

Deno.test("log addresses", async (t) => {
  await t.step("a record without ids belongs to the process, under the system correlation id", () => {
    const address = addressOf(idsOf({ port: 4222 }), "info", process);
    assert.equal(address.subject, "compozy.system.engine.logs.p-1.info");
    assert.equal(address.correlationId, "system");
    assert.equal(address.workflow, undefined);
  });

  await t.step("the most specific execution names the subject", () => {
    const ids = idsOf({
      correlation_id: exec,
      workflow_id: "weather",
      workflow_exec_id: exec,
      task_id: "get-weather",
      task_exec_id: "t-1",
      tool_id: "weather_tool",
      tool_exec_id: "x-1",
    });
    const address = addressOf(ids, "warn", process);
    assert.equal(address.subject, `compozy.${exec}.tool.logs.x-1.warn`);
    assert.equal(address.workflow?.id, "weather");
    assert.equal(address.task?.execId, "t-1");
    assert.equal(address.tool?.id, "weather_tool");
    assert.equal(address.agent, undefined);
    assert.equal(
      addressOf(idsOf({ workflow_exec_id: exec, task_exec_id: "t-1" }), "debug", process).subject,
      `compozy.${exec}.task.logs.t-1.debug`,
    );
    assert.equal(
      addressOf(idsOf({ correlation_id: exec, agent_exec_id: "a-1", action_id: "advise" }), "info", process)
        .agent?.actionId,
      "advise",
    );
  });

  await t.step("a root workflow execution id is the correlation id when none is given", () => {
    const address = addressOf(idsOf({ workflow_exec_id: exec }), "error", process);
    assert.equal(address.subject, `compozy.${exec}.workflow.logs.${exec}.error`);
    assert.equal(address.correlationId, exec);
  });

  await t.step("ids that cannot be subject tokens fall back to the process subject, ids kept", () => {
    const address = addressOf(idsOf({ correlation_id: exec, task_exec_id: "a.b" }), "info", process);
    assert.equal(address.subject, "compozy.system.engine.logs.p-1.info");
    assert.equal(address.correlationId, "system");
    assert.equal(address.task?.execId, "a.b");
  });

  await t.step("empty and non-scalar ids are ignored; numbers are read as text", () => {
    assert.deepEqual(idsOf({ task_exec_id: "", tool_exec_id: { x: 1 }, workflow_id: 7 }), {
      workflowId: "7",
    });
  });
});
