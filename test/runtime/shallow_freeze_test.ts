/**
 * What the sandbox freezes is frozen with everything it reaches (break attempt brk39). A freeze is shallow:
 * SES's `assert` global was frozen, but its `assert.Fail` and `assert.string` were not, and the realm's walk
 * (global_guard.ts) skipped what was frozen already; the put-back of Node's objects (node_guard.ts) froze the
 * methods of prototypes alone, leaving each one's `prototype` object (and the statics of a class reached as
 * a prototype's `constructor`) open. A call set properties on them, and the next call of the warm process,
 * maybe another execution's, read them. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

/** Every object reachable from a frozen one by a fixed property, a prototype or an accessor, not frozen. */
const WALK = `
  const open: string[] = [];
  const seen = new Set<unknown>();
  const stack: Array<[unknown, string, boolean]> = Object.entries(roots).map(([n, r]) => [r, n, false]);
  while (stack.length > 0) {
    const [o, at, fixed] = stack.pop()!;
    if ((typeof o !== "object" && typeof o !== "function") || o === null) continue;
    const frozen = Object.isFrozen(o);
    if (fixed && !frozen) open.push(at);
    if (seen.has(o)) continue;
    seen.add(o);
    let keys: PropertyKey[];
    try {
      keys = Reflect.ownKeys(o);
    } catch {
      continue;
    }
    for (const key of keys) {
      const d = Object.getOwnPropertyDescriptor(o, key);
      if (d === undefined) continue;
      const next = at + "." + String(key);
      if ("value" in d) stack.push([d.value, next, frozen && !d.writable && !d.configurable]);
      else stack.push([d.get, next + "<get>", frozen], [d.set, next + "<set>", frozen]);
    }
    stack.push([Object.getPrototypeOf(o), at + ".__proto__", frozen]);
  }
  return open;`;

function tool(node: boolean, attack: string, report: string): string {
  return `${
    node
      ? `import crypto from "node:crypto"; import http from "node:http"; import stream from "node:stream";
         import fs from "node:fs"; import util from "node:util"; import process from "node:process";`
      : ""
  }
  let calls = 0;
  export default (input: { step: number; secret: string }) => {
    calls++;
    const g = globalThis as any;
    const roots: Record<string, unknown> = { globalThis${
    node ? ", crypto, http, stream, fs, util, process" : ""
  } };
    if (input.step === 1) {
      ${attack}
      return "done";
    }
    if (input.step === 3) { ${WALK} }
    return { seen: ${report}, callsInProcess: calls };
  };`;
}

Deno.test("nothing reachable from a frozen built-in carries a call's data to the next", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const run = (path: string, step: number) =>
    runner.run(
      call(path, { step, secret: step === 1 ? "A's secret" : "B's secret" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: step === 1 ? "exec-A" : "exec-B" },
      }),
    );
  const plant = (target: string) =>
    `try { (${target} as any).leftByA = input.secret; } catch { /* frozen */ }`;
  const cases: Record<string, [boolean, string]> = {
    "SES's assert.Fail": [false, "g.assert.Fail"],
    "SES's assert.string": [false, "g.assert.string"],
    "the prototype object of a Node method": [true, "crypto.createHash('sha256').digest.prototype"],
    "the prototype object of an inherited Node method": [
      true,
      "http.ServerResponse.prototype.writeHead.prototype",
    ],
  };
  try {
    for (const [name, [node, target]] of Object.entries(cases)) {
      await t.step(name, async () => {
        const path = dir.tool(
          name.replace(/\W+/g, "_"),
          tool(node, plant(target), `(${target} as any).leftByA ?? null`),
        );
        const first = await run(path, 1);
        assert.deepEqual(first.ok && first.output, "done", JSON.stringify(first));
        const second = await run(path, 2);
        // Before: B read "A's secret" in A's process.
        assert.ok(second.ok, JSON.stringify(second));
        assert.equal((second.output as { seen: unknown }).seen, null, JSON.stringify(second));
      });
    }
    for (const node of [false, true]) {
      await t.step(`no frozen object holds an open one (${node ? "with" : "without"} Node)`, async () => {
        const path = dir.tool(`walk_${node}`, tool(node, "", "null"));
        const walked = await run(path, 3);
        // Before: assert.Fail and assert.string; with Node, ~170 methods' prototype objects and statics.
        assert.deepEqual(walked.ok && walked.output, [], JSON.stringify(walked).slice(0, 2000));
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
