import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { formatJsonLine, formatPrettyLine, renderMessage } from "./formatters.ts";

function record(overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    category: ["compozy", "engine"],
    level: "info",
    message: ["Task ", "get-weather", " done in ", 12, " ms"],
    rawMessage: "Task {task_id} done in {ms} ms",
    timestamp: Date.UTC(2025, 0, 1, 10, 0, 0, 5),
    properties: { task_id: "get-weather", ms: 12 },
    ...overrides,
  };
}

Deno.test("renderMessage fills placeholders, strings bare and other values as JSON", () => {
  assert.equal(renderMessage(record()), "Task get-weather done in 12 ms");
  assert.equal(renderMessage(record({ message: ["got ", { a: 1 }, ""] })), 'got {"a":1}');
});

Deno.test("JSON lines", async (t) => {
  await t.step("one parseable object per line with the properties at the top level", () => {
    const line = formatJsonLine(record());
    assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"));
    assert.deepEqual(JSON.parse(line), {
      time: "2025-01-01T10:00:00.005Z",
      level: "info",
      category: "compozy.engine",
      message: "Task get-weather done in 12 ms",
      task_id: "get-weather",
      ms: 12,
    });
  });

  await t.step("warning is written as warn, the level name of subjects and configuration", () => {
    assert.equal(JSON.parse(formatJsonLine(record({ level: "warning" }))).level, "warn");
  });

  await t.step("a property named like a reserved field does not overwrite it", () => {
    const parsed = JSON.parse(formatJsonLine(record({ properties: { message: "mine", level: 3 } })));
    assert.equal(parsed.message, "Task get-weather done in 12 ms");
    assert.equal(parsed["prop.message"], "mine");
    assert.equal(parsed["prop.level"], 3);
  });

  await t.step("values JSON cannot hold are written, never thrown", () => {
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const error = new TypeError("bad input", { cause: new Error("root") });
    const parsed = JSON.parse(formatJsonLine(record({
      properties: {
        big: 10n ** 20n,
        cyclic,
        error,
        bytes: new Uint8Array(3),
        nan: NaN,
        get boom() {
          throw new Error("getter");
        },
      },
    })));
    assert.equal(parsed.big, "100000000000000000000");
    assert.deepEqual(parsed.cyclic, { name: "loop", self: "[Circular]" });
    assert.equal(parsed.error.name, "TypeError");
    assert.equal(parsed.error.message, "bad input");
    assert.equal(parsed.error.cause.message, "root");
    assert.match(parsed.error.stack, /TypeError: bad input/);
    assert.equal(parsed.bytes, "[3 bytes]");
    assert.equal(parsed.nan, "NaN");
    assert.match(parsed.boom, /Unserialisable: getter/);
  });
});

Deno.test("pretty lines", async (t) => {
  const local = new Date(Date.UTC(2025, 0, 1, 10, 0, 0, 5));
  const time = [local.getHours(), local.getMinutes(), local.getSeconds()]
    .map((n) => String(n).padStart(2, "0")).join(":") + ".005";

  await t.step("short time, level, category, message and the key=value properties it does not show", () => {
    assert.equal(
      formatPrettyLine(record({ properties: { task_id: "get-weather", ms: 12, attempt: 2 } }), {
        color: false,
      }),
      `${time} INFO  compozy.engine Task get-weather done in 12 ms attempt=2\n`,
    );
  });

  await t.step("a tool's output line: execution ids short, the root's correlation id once", () => {
    const exec = "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0001";
    const line = formatPrettyLine(
      record({
        category: ["compozy", "tool"],
        message: ["fetching Lisbon"],
        rawMessage: "fetching Lisbon",
        properties: {
          correlation_id: exec,
          workflow_id: "weather",
          workflow_exec_id: exec,
          task_id: "get-weather",
          task_exec_id: "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0002",
          tool_id: "weather_tool",
          tool_exec_id: "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0003",
          stream: "stdout",
        },
      }),
      { color: false },
    );
    assert.equal(
      line,
      `${time} INFO  compozy.tool fetching Lisbon workflow_id=weather workflow_exec_id=…ffff0001 ` +
        "task_id=get-weather task_exec_id=…ffff0002 tool_id=weather_tool tool_exec_id=…ffff0003 stream=stdout\n",
    );
  });

  await t.step("values with spaces, quotes or = are quoted", () => {
    const line = formatPrettyLine(record({ properties: { a: "two words", b: "k=v", c: { x: 1 } } }), {
      color: false,
    });
    assert.match(line, / a="two words" b="k=v" c=\{"x":1\}\n$/);
  });

  await t.step("the level is coloured only when asked", () => {
    assert.ok(!formatPrettyLine(record(), { color: false }).includes("\x1b["));
    assert.ok(formatPrettyLine(record({ level: "error" }), { color: true }).includes("\x1b[31mERROR\x1b[0m"));
  });

  await t.step("a logged error shows its message inline and its stack below", () => {
    const line = formatPrettyLine(record({ properties: { error: new Error("boom") } }), { color: false });
    const [first, ...rest] = line.trimEnd().split("\n");
    assert.match(first, / error="Error: boom"$/);
    assert.ok(rest.length > 0 && rest.every((l) => l.startsWith("    at ")));
  });

  await t.step("escape sequences and newlines in a message cannot forge terminal output", () => {
    const line = formatPrettyLine(
      record({ message: ["tool said \x1b[2J\ncleared"], properties: {} }),
      { color: false },
    );
    assert.ok(!line.includes("\x1b[2J"));
    assert.equal(line.split("\n").length, 2);
  });
});

Deno.test("red team 8 S14: a JSON log line writes C1 controls escaped, and parses to the same text", () => {
  const message = "C1-TEST \u009b2J \u009d0;C1-TITLE\u009c \u001b]0;ESC\u0007 \u2028 end";
  const line = formatJsonLine({
    category: ["compozy", "tool"],
    level: "info",
    message: [message],
    rawMessage: message,
    timestamp: 0,
    properties: {},
  });
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(line, /[\u0000-\u0009\u000b-\u001f\u0080-\u009f\u2028\u2029]/);
  assert.equal(JSON.parse(line).message, message);
});
