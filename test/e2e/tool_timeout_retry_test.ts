/**
 * Outside review D1 through a real stack (`compozy dev`: NATS, engine, runtime, sandboxes): a tool's `timeout`
 * bounds its run from when the call enters its sandbox, so the retry of a timed-out attempt runs, although the
 * time-out killed its sandbox and the retry must wait for a new one.
 *
 * - `flaky` is the review's workflow (`timeout: 700ms`, `max_attempts: 2`, the tool sleeps 3 s on attempt 1
 *   only). Before, attempt 2 usually failed `tool_timeout` "No sandbox ... was ready before the call's time
 *   limit" without entering the tool (a cold start takes 0.7-1 s), and the task FAILED.
 * - `slow` makes that wait certain and long: its module's load takes 6.5 s (a top-level await), longer than the
 *   engine's old deadline for a 500 ms call (its limit plus 5 s), so it also fails on a runtime that bounds the
 *   wait apart if the engine does not allow for the wait (`runtime_unavailable`, "runtime did not answer").
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDevOn } from "./support/dev_server.ts";

/** Where, in the project, the tool writes a line for each attempt it runs. */
const CALLS_LOG = "calls.log";

const TOOL_BODY = `export default async (input: { tag: string }, ctx: { attempt: number }) => {
  await Deno.writeTextFile(LOG, input.tag + " attempt=" + ctx.attempt + "\\n", { append: true });
  if (ctx.attempt === 1) await new Promise((r) => setTimeout(r, 3_000));
  return { ok: ctx.attempt };
};`;

function workflow(id: string, tool: string, timeout: string, log: string): string {
  return `id: ${id}
tools:
  - id: ${id}
    execute: ./tools/${tool}
    permissions: { write: [${JSON.stringify(log)}] }
    timeout: ${timeout}
tasks:
  - id: f
    use: tool(id=${id})
    with: { tag: "${id}" }
    retry: { max_attempts: 2, backoff: { initial: 100ms, max: 100ms, factor: 1 } }
`;
}

Deno.test({
  name: "a retry after a tool time-out runs in a new sandbox and succeeds (review D1)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // The 6.5 s load must fit the runtime's start timeout on a loaded machine.
    const dev = await startDevOn((dir) => {
      const log = join(dir, CALLS_LOG);
      const LOG = `const LOG = ${JSON.stringify(log)};\n`;
      return {
        "compozy.yaml": "name: d1\nworkflows:\n  - source: ./flaky.yaml\n  - source: ./slow.yaml\n",
        "flaky.yaml": workflow("flaky", "flaky.ts", "700ms", log),
        "slow.yaml": workflow("slow", "slow.ts", "500ms", log),
        "tools/flaky.ts": LOG + TOOL_BODY,
        "tools/slow.ts": LOG + "await new Promise((r) => setTimeout(r, 6_500));\n" + TOOL_BODY,
      };
    }, { COMPOZY_SANDBOX_START_TIMEOUT_MS: "30000" });
    try {
      for (const id of ["flaky", "slow"]) {
        const started = performance.now();
        const state = await dev.run(id, undefined, { wait: "120s" });
        const tookMs = Math.round(performance.now() - started);
        assert.equal(state.status, "SUCCESS", `${id} (${tookMs} ms): ${JSON.stringify(state.error)}`);
        assert.deepEqual(state.output, { ok: 2 }, id);
      }
      // Each attempt entered the tool: none was spent waiting for a sandbox.
      const calls = (await Deno.readTextFile(join(dev.dir, CALLS_LOG))).split("\n").filter(Boolean);
      assert.deepEqual(calls, ["flaky attempt=1", "flaky attempt=2", "slow attempt=1", "slow attempt=2"]);
    } finally {
      await dev.close();
    }
  },
});
