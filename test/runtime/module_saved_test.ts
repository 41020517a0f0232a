/**
 * A tool's module saved while a sandbox starts for it (outside review E8, `compozy dev --watch`): the
 * sandbox's process may read the checked graph's files, but the worker that evaluates the tool has only the
 * tool's grants, and Deno reloads a file that changed since the worker's graph was built with the worker's
 * rights: the call failed `tool_import_refused` ("Requires read access to <the tool file>").
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

Deno.test("a call whose sandbox is starting when its tool's file is saved runs, on the saved code", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxProcesses: 2, reserveProcesses: 0 });
  try {
    const path = dir.tool("saved", `export default () => "first";\n`);
    let saves = 0;
    // Saves the file every few milliseconds while the first sandbox starts, so that one save lands between
    // its worker's graph and its import of the tool; stops once a second sandbox is spawned.
    const result = runner.run(call(path, {}));
    let ended = false;
    void result.finally(() => (ended = true));
    while (!ended && runner.stats().spawned < 2) {
      if (runner.stats().spawned === 1) {
        Deno.writeTextFileSync(path, `export default () => "saved";\n// save ${++saves}\n`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const outcome = await result;
    assert.equal(
      outcome.ok ? outcome.output : outcome.failure.code,
      "saved",
      `after ${saves} saves: ${outcome.ok ? "" : outcome.failure.message}`,
    );
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
