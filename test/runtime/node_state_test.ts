/**
 * Node's objects in a warm sandbox: what one call does to `process` or to the objects of Node's built-in
 * modules (a replaced function, a new property, a listener) is not there for the next call of the same
 * process. Real sandbox processes; the next call compares what it sees with what a first call saw.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const TOOL = `
import fs from "node:fs";
import { EventEmitter } from "node:events";
import path from "node:path";

const patches: Record<string, () => void> = {
  fsFunction: () => { (fs as any).existsSync = () => "patched"; },
  fsAdded: () => { (fs as any).extra = "patched"; },
  emitterPrototype: () => { (EventEmitter.prototype as any).emit = () => "patched"; },
  pathFunction: () => { (path as any).join = () => "patched"; },
  processFunction: () => { (process as any).cwd = () => "patched"; },
  processAdded: () => { (process as any).extra = "patched"; },
  processListener: () => { process.on("warning", () => {}); },
  stdoutWrite: () => { (process.stdout as any).extra = "patched"; },
  builtinAtRunTime: () => { ((process as any).getBuiltinModule("node:os") as any).hostname = () => "patched"; },
};

function view() {
  return {
    fsFunction: String((fs as any).existsSync.name),
    fsAdded: String((fs as any).extra),
    emitterPrototype: String(new EventEmitter().emit("x")),
    pathFunction: path.join("a", "b"),
    processFunction: String(process.cwd.name),
    processAdded: String((process as any).extra),
    processListener: process.listenerCount("warning"),
    stdoutWrite: String((process.stdout as any).extra),
    builtinAtRunTime: String(((process as any).getBuiltinModule("node:os") as any).hostname.name),
  };
}

export default (mode: string) => {
  if (mode === "look") return view();
  const refused: string[] = [];
  for (const [name, patch] of Object.entries(patches)) {
    try {
      patch();
    } catch {
      refused.push(name);
    }
  }
  return refused;
};
`;

Deno.test("what a call does to Node's process and built-in modules is not there for the next call", async () => {
  const dir = new ToolDir();
  // Cold starts take seconds on a loaded machine; nothing here is about time.
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = dir.tool("node_state", TOOL);
    // Cold starts take seconds on a loaded machine; no call here is about time.
    const slow = { timeoutMs: 60_000 };
    const fresh = await runner.run(call(tool, "look", slow));
    assert.ok(fresh.ok, JSON.stringify(fresh));
    const [pid] = runner.stats().pids;
    const patched = await runner.run(call(tool, "patch", slow));
    assert.ok(patched.ok, JSON.stringify(patched));
    const next = await runner.run(call(tool, "look", slow));
    assert.ok(next.ok, JSON.stringify(next));
    assert.deepEqual(runner.stats().pids, [pid], "the same warm process ran the three calls");
    assert.deepEqual(next.output, fresh.output);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
