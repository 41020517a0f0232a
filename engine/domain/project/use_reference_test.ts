import assert from "node:assert/strict";
import { parseUse } from "./use_reference.ts";

Deno.test("parseUse", async (t) => {
  await t.step("accepts the five forms", () => {
    assert.deepEqual(parseUse("tool(id=weather_tool)"), { kind: "tool", by: "id", value: "weather_tool" });
    assert.deepEqual(parseUse("agent(id=forecaster)"), { kind: "agent", by: "id", value: "forecaster" });
    assert.deepEqual(parseUse("workflow(id=notify)"), { kind: "workflow", by: "id", value: "notify" });
    assert.deepEqual(parseUse("tool(file=./tools/x.yaml)"), {
      kind: "tool",
      by: "file",
      value: "./tools/x.yaml",
    });
    assert.deepEqual(parseUse("agent(file=../a.yaml)"), { kind: "agent", by: "file", value: "../a.yaml" });
  });

  await t.step("rejects everything else", () => {
    for (
      const bad of [
        "tool:x",
        "tool(id=)",
        "tool(name=x)",
        "workflow(file=./w.yaml)",
        "task(id=x)",
        "tool(id=a b)",
        "tool(id=x))",
      ]
    ) {
      assert.equal(parseUse(bad), undefined, bad);
    }
  });
});
