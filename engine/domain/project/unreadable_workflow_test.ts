import assert from "node:assert/strict";
import { recoverWorkflowId } from "./unreadable_workflow.ts";

Deno.test("recoverWorkflowId reads a top-level id line, plain or quoted, with a comment", () => {
  assert.equal(recoverWorkflowId("id: weather\ntasks: [ {\n"), "weather");
  assert.equal(recoverWorkflowId('description: x\nid: "notify-2" # the id\n'), "notify-2");
  assert.equal(recoverWorkflowId("tasks:\n  - id: x\nid: 'w'\n"), "w");
});

Deno.test("recoverWorkflowId gives nothing when the id is absent, nested, ambiguous or not an id", () => {
  assert.equal(recoverWorkflowId("tasks: [ {\n  - id: y\n"), undefined);
  assert.equal(recoverWorkflowId("config:\n  id: x\n"), undefined);
  assert.equal(recoverWorkflowId("id: a\nid: b\n"), undefined);
  assert.equal(recoverWorkflowId('id: "unterminated\n'), undefined);
  assert.equal(recoverWorkflowId("id: Not An Id\n"), undefined);
});
