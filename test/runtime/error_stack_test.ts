/**
 * A tool's failure names none of the host's layout: the stack of the error it threw keeps the tool's own
 * frames, relative to its project, and drops the sandbox's (which named where Compozy is installed: its
 * checkout's `pkg/runtime/tool_worker.ts`, or a compiled binary's cache folder). Real sandbox processes.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call } from "./_helpers.ts";

const INSTALL = fileURLToPath(new URL("../../", import.meta.url));

Deno.test("an error's stack keeps the tool's own frames, relative to the project, and no host path", async () => {
  const project = await Deno.makeTempDir({ prefix: "compozy-stack-" });
  const runner = new ToolRunner({ startTimeoutMs: 60_000 });
  try {
    await Deno.mkdir(join(project, "tools", "lib"), { recursive: true });
    await Deno.writeTextFile(join(project, "compozy.yaml"), "name: stacks\n");
    await Deno.writeTextFile(
      join(project, "tools", "lib", "helper.ts"),
      `export function inner(): never { throw new Error("deep"); }\n`,
    );
    const tool = join(project, "tools", "thrower.ts");
    await Deno.writeTextFile(
      tool,
      `import { inner } from "./lib/helper.ts";
       export default async () => {
         await Promise.resolve();
         [1].map(() => {
           try { inner(); } catch (e) { throw new TypeError("outer", { cause: e }); }
         });
       };`,
    );
    const result = await runner.run(call(tool, {}, { timeoutMs: 60_000 }));
    assert.ok(!result.ok);
    assert.equal(result.failure.code, "tool_threw");
    const outer = result.failure.cause as Error;
    const inner = outer.cause as Error;
    for (const stack of [outer.stack ?? "", inner.stack ?? ""]) {
      assert.ok(!stack.includes(INSTALL), `the stack names where Compozy is installed:\n${stack}`);
      assert.ok(!stack.includes(project), `the stack names the project's absolute path:\n${stack}`);
      assert.doesNotMatch(stack, /tool_worker|call_scope|worker_host/);
      assert.match(stack, /\(tools\/thrower\.ts:\d+:\d+\)/);
    }
    assert.match(outer.stack ?? "", /^TypeError: outer\n/);
    assert.match(inner.stack ?? "", /^Error: deep\n\s+at inner \(tools\/lib\/helper\.ts:1:\d+\)/);
  } finally {
    await runner.close();
    await Deno.remove(project, { recursive: true });
  }
});
