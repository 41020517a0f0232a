/** The lines of `compozy run --wait` and the dev live view: one per step, each error in full once. */

import assert from "node:assert/strict";
import { CATALOGUE } from "../pkg/nats/catalogue.ts";
import { EventLines, EVENTS_SHOWN, type EventView } from "./event_line.ts";
import { paintFor } from "./terminal.ts";

const plain = paintFor({ isTerminal: () => false });
const workflow = { id: "weather", execId: "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0001" };
const task = { id: "get-weather", execId: "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0002" };
const error = { code: "tool_threw", message: "weather service unreachable" };

function at(seconds: number, type: string, data: Record<string, unknown>): EventView {
  return {
    type,
    time: new Date(Date.UTC(2026, 0, 1, 10, 0, seconds)).toISOString(),
    data: { workflow, ...data },
  };
}

Deno.test("event lines", async (t) => {
  await t.step("a tool step gets its own line, not a second task line", () => {
    const lines = new EventLines(plain);
    const out = [
      at(0, "task.started", { task }),
      at(0, "tool.started", { task, tool: { id: "weather_tool" } }),
      at(1, "tool.success", { task, tool: { id: "weather_tool" }, durationMs: "12" }),
      at(1, "task.success", { task }),
    ].map((e) => lines.format(e)).filter(Boolean);
    assert.deepEqual(out, [
      "10:00:01.000 weather …ffff0001     ↳ tool weather_tool ✓ in 12ms",
      "10:00:01.000 weather …ffff0001   get-weather      ✓ in 1.00s",
    ]);
  });

  await t.step("an error is printed in full once; later lines name its code", () => {
    const lines = new EventLines(plain);
    const out = [
      at(0, "workflow.started", {}),
      at(1, "tool.failed", { task, tool: { id: "weather_tool" }, error }),
      at(1, "task.failed", { task, error }),
      at(2, "workflow.failed", { error }),
    ].map((e) => lines.format(e)).filter(Boolean) as string[];
    assert.equal(out.length, 4);
    assert.equal(out.filter((line) => line.includes("weather service unreachable")).length, 1);
    assert.match(out[1], /↳ tool weather_tool ✗ tool_threw: weather service unreachable/);
    assert.match(out[2], /get-weather +✗ tool_threw \(above\)/);
    assert.match(out[3], /✗ FAILED in 2\.00s: tool_threw \(above\)/);
    assert.equal(lines.hasShown(error.message), true);
  });

  await t.step("an agent's line shows its token usage", () => {
    const line = new EventLines(plain).format(
      at(3, "agent.success", { task, agent: { id: "forecaster" }, usage: { totalTokens: "57" } }),
    );
    assert.match(line!, /↳ agent forecaster ✓ \(57 tokens\)$/);
  });

  await t.step("each turn of an agent's loop has its line: the reply, then each tool call's end", () => {
    const lines = new EventLines(plain);
    const agent = { id: "forecaster" };
    const out = [
      at(1, "agent.model_replied", {
        task,
        agent,
        turn: 1,
        toolCalls: [{ toolId: "weather_tool" }],
        usage: { totalTokens: "40" },
      }),
      at(2, "agent.tool_call_ended", {
        task,
        agent,
        turn: 1,
        call: { toolId: "weather_tool" },
        durationMs: "12",
      }),
      at(3, "agent.tool_call_ended", {
        task,
        agent,
        turn: 2,
        call: { toolId: "weather_tool" },
        error: { message: "down" },
      }),
      at(4, "agent.model_replied", { task, agent, turn: 3, toolCalls: [] }),
      at(5, "agent.tool_call_ended", {
        task,
        agent,
        turn: 3,
        call: { toolId: "search", mcpServer: "docs" },
        durationMs: "7",
      }),
    ].map((e) => lines.format(e));
    assert.match(out[0]!, /↳ agent forecaster turn 1: calls weather_tool \(40 tokens\)$/);
    assert.match(out[1]!, /↳ agent forecaster turn 1: weather_tool ✓ in 12ms$/);
    assert.match(out[2]!, /↳ agent forecaster turn 2: weather_tool ✗ down$/);
    assert.match(out[3]!, /↳ agent forecaster turn 3: answered$/);
    assert.match(out[4]!, /↳ agent forecaster turn 3: search \(mcp docs\) ✓ in 7ms$/);
  });

  await t.step(
    "a waiting task says what it waits for: a signal, a sleep's timer, or its sub-workflow",
    () => {
      // As the engine records them (engine/domain/task/runners): a sleep has a deadline, a wait its signal (and
      // a deadline with a timeout), a sub-workflow task neither; proto JSON leaves out a 0 deadline.
      const line = (data: Record<string, unknown>) =>
        new EventLines(plain).format(at(1, "task.waiting_started", { task, ...data }));
      assert.match(line({ deadlineUnixMs: "1767261603000" })!, /get-weather +⏸ sleeping$/);
      assert.match(line({ signalId: "go", deadlineUnixMs: "1767261603000" })!, /⏸ waiting for signal 'go'$/);
      assert.match(line({ signalId: "go" })!, /⏸ waiting for signal 'go'$/);
      assert.match(line({})!, /get-weather +⏸ waiting for its sub-workflow$/);
    },
  );

  await t.step("an event the live view does not subscribe to gives no line, whatever it carries", () => {
    const shown = new Set(
      Object.entries(EVENTS_SHOWN).flatMap(([component, types]) =>
        types.map((type) => `${component}.${type}`)
      ),
    );
    const everything = {
      task,
      tool: { id: "weather_tool" },
      agent: { id: "forecaster" },
      error,
      durationMs: "12",
      turn: 1,
      signalId: "go",
      reason: "r",
      attempt: 2,
    };
    const all = Object.entries(CATALOGUE).flatMap(([component, kinds]) =>
      Object.keys((kinds as { evts?: object }).evts ?? {}).map((type) => `${component}.${type}`)
    );
    const hidden = all.filter((type) => !shown.has(type));
    // A task's dispatch and a tool's start are the two of a tool step's five events left out (issue 11).
    assert.ok(hidden.includes("task.dispatched") && hidden.includes("tool.started"));
    for (const type of hidden) {
      assert.equal(new EventLines(plain).format(at(1, type, everything)), undefined, type);
    }
    for (const type of shown) assert.ok(all.includes(type), `${type} is not in the catalogue`);
  });
});
