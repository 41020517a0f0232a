import assert from "node:assert/strict";
import { join } from "node:path";
import { redactErrorStacks, redactStack, stackRoot } from "./stack_redaction.ts";

Deno.test("redactStack keeps the project's frames, relative, and drops every other file's", () => {
  const stack = [
    "TypeError: outer",
    "second line of the message, at /etc/passwd",
    "    at /srv/p/tools/a.ts:2:116",
    "    at Array.map (<anonymous>)",
    "    at default (file:///srv/p/tools/lib/b%20c.ts:2:69)",
    "    at async handle (/opt/compozy/pkg/runtime/tool_worker.ts:614:35)",
    "    at run (file:///home/u/.cache/deno/npm/x/index.js:1:1)",
    "    at ext:core/01_core.js:10:3",
    "    at Object.fn [as f] (node:internal/x:1:2)",
    "    at /srv/pother/a.ts:1:1",
  ].join("\n");
  assert.equal(
    redactStack(stack, "/srv/p"),
    [
      "TypeError: outer",
      "second line of the message, at /etc/passwd",
      "    at tools/a.ts:2:116",
      "    at Array.map (<anonymous>)",
      "    at default (tools/lib/b c.ts:2:69)",
      "    at ext:core/01_core.js:10:3",
      "    at Object.fn [as f] (node:internal/x:1:2)",
    ].join("\n"),
  );
});

Deno.test("redactErrorStacks walks the cause chain", () => {
  const inner = new Error("inner");
  inner.stack = "Error: inner\n    at x (/opt/c/w.ts:1:1)\n    at y (/p/t.ts:3:4)";
  const outer = new Error("outer", { cause: inner });
  outer.stack = "Error: outer\n    at z (/opt/c/w.ts:1:1)";
  redactErrorStacks(outer, "/p");
  assert.equal(outer.stack, "Error: outer");
  assert.equal(inner.stack, "Error: inner\n    at y (t.ts:3:4)");
});

Deno.test("stackRoot is the innermost project of the module, or its folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-stack-root-" });
  try {
    await Deno.mkdir(join(dir, "p", "tools", "deep"), { recursive: true });
    await Deno.writeTextFile(join(dir, "p", "compozy.yaml"), "name: p\n");
    assert.equal(await stackRoot(join(dir, "p", "tools", "deep", "t.ts")), join(dir, "p"));
    assert.equal(await stackRoot(join(dir, "loose.ts")), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
