import assert from "node:assert/strict";
import { pruneErrors } from "./trust.ts";

const errorsAt = (...paths: string[]) => paths.map((path) => ({ path }));

Deno.test("pruneErrors leaves out only the value an error names, and keeps its siblings trusted", () => {
  const item = { id: "a", config: { $model: "m", temperature: "hot" }, instructions: "hi" };
  const { value, trust } = pruneErrors(item, ["agents", 0], errorsAt("agents[0].config.temperature"));
  assert.deepEqual(value, { id: "a", config: { $model: "m" }, instructions: "hi" });
  assert.equal(trust!(["config", "$model"]), true);
  assert.equal(trust!(["config", "temperature"]), false);
  // Something inside `config` was left out: `config` as a whole is not as written.
  assert.equal(trust!(["config"]), false);
  assert.equal(trust!(["instructions"]), true);
});

Deno.test("pruneErrors keeps a mapping with an error of its own, but not the fields it lacks", () => {
  const item = { id: "a", config: { temperature: 0.5 } };
  const { value, trust } = pruneErrors(item, [], errorsAt("config", "(root)"));
  assert.deepEqual(value, item);
  assert.equal(trust!(["config", "temperature"]), true);
  assert.equal(trust!(["config", "$model"]), false); // maybe the missing required field
  assert.equal(trust!(["instructions"]), false); // the root lacks a required field too
});

Deno.test("pruneErrors leaves a list out whole when one of its items is, so no index shifts", () => {
  const item = { id: "a", actions: [5, { id: "go", prompt: 1 }], tools: ["x"] };
  const { value, trust } = pruneErrors(item, [], errorsAt("actions[0]", "actions[1].prompt"));
  assert.deepEqual(value, { id: "a", tools: ["x"] });
  assert.equal(trust!(["actions", 1, "id"]), false);
  assert.equal(trust!(["tools", 0]), true);
  const inner = pruneErrors({ actions: [{ id: "go", prompt: 1 }] }, [], errorsAt("actions[0].prompt"));
  assert.deepEqual(inner.value, { actions: [{ id: "go" }] });
  assert.equal(inner.trust!(["actions", 0, "id"]), true);
});

Deno.test("pruneErrors without an error under the item trusts everything", () => {
  const item = { id: "a", x: 1 };
  assert.deepEqual(pruneErrors(item, ["tools", 1], errorsAt("tools[0].x", "tools[10]")), { value: item });
});
