/**
 * The console's pure logic, run in Deno: the timeline's spans (attempts, retry backoffs, waits) read from a
 * history, the stacking of child tasks, and the start form's conversion of field values to a typed input.
 */
import assert from "node:assert/strict";

// Loaded by a computed URL so that they stay out of the type-checked program: preact's types bring in the
// DOM library, whose stream types clash with Deno's in the rest of the repository.
const ui = (file: string) => import(new URL(`../../server/console/ui/${file}`, import.meta.url).href);
const { orderTasks, taskSpans } = await ui("timeline.js");
const { initialValues, toInput } = await ui("workflows.js");

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const event = (type: string, s: number, data: Record<string, unknown>) => ({
  seq: s,
  subject: "",
  type,
  time: at(s),
  data: { task: { id: "t", execId: "t1" }, ...data },
});

Deno.test("timeline spans: attempts, retry backoffs and waits from the history", () => {
  const spans = taskSpans([
    event("task.started", 1, { attempt: 1 }),
    event("task.retry_scheduled", 2, { nextAttempt: 2, delayMs: "3000", error: { message: "flaky" } }),
    event("task.started", 5, { attempt: 2 }),
    event("task.waiting_started", 6, { signalId: "approve", deadlineUnixMs: String(Date.parse(at(60))) }),
    event("task.waiting_ended", 9, { payload: { ok: true } }),
    { seq: 10, subject: "", type: "workflow.success", time: at(10), data: {} },
  ]);
  const s = spans.get("t1");
  assert.deepEqual(s.attempts.map((a: { attempt: number }) => a.attempt), [1, 2]);
  assert.deepEqual(s.backoffs, [{ from: Date.parse(at(2)), to: Date.parse(at(5)), next: 2, error: "flaky" }]);
  assert.deepEqual(s.waits, [{
    from: Date.parse(at(6)),
    to: Date.parse(at(9)),
    signal: "approve",
    deadline: Date.parse(at(60)),
    payload: { ok: true },
    timedOut: false,
  }]);
  assert.equal(spans.size, 1, "workflow events make no span");
});

Deno.test("timeline rows: children stacked under their parent, each level by start", () => {
  const task = (exec_id: string, started: number, parent: string | null = null) => ({
    task_id: exec_id,
    exec_id,
    parent_exec_id: parent,
    started_at: at(started),
  });
  const rows = orderTasks([
    task("late", 9),
    task("both", 2),
    task("both/b", 4, "both"),
    task("both/a", 3, "both"),
    task("first", 1),
  ]);
  assert.deepEqual(
    rows.map((r: { task: { exec_id: string }; depth: number }) => `${r.depth}:${r.task.exec_id}`),
    [
      "0:first",
      "0:both",
      "1:both/a",
      "1:both/b",
      "0:late",
    ],
  );
});

Deno.test("start form: values become a typed input; a number or JSON that does not parse is a field error", () => {
  const schema = {
    type: "object",
    properties: {
      name: { type: "string" },
      times: { type: "integer", default: 2 },
      loud: { type: "boolean" },
      tags: { type: "array" },
      extra: { type: "object" },
    },
  };
  assert.deepEqual(initialValues(schema), { name: "", times: 2, loud: false, tags: "", extra: "" });
  assert.deepEqual(toInput(schema, { name: "Ada", times: "3", loud: true, tags: '["a"]', extra: "" }), {
    input: { name: "Ada", times: 3, loud: true, tags: ["a"] },
    errors: {},
  });
  const bad = toInput(schema, { name: "", times: "x", loud: false, tags: "[", extra: "" });
  assert.deepEqual(bad.input, { loud: false });
  assert.deepEqual(Object.keys(bad.errors).sort(), ["/tags", "/times"]);
});
