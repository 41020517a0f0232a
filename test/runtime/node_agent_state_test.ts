/**
 * `http.globalAgent` and `https.globalAgent` are instances every request of a warm worker shares, and the
 * put-back of Node's objects (node_guard.ts) skipped instances: a call that set the agent's `maxSockets`,
 * `keepAlive`, an `options.lookup` or a `createConnection`, or added a listener, steered every later call's
 * requests, of other executions too. Now they are put back after each call. Real sandbox processes; the two
 * calls run in the same process (asserted by pid).
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const TOOL = `import http from "node:http";
import https from "node:https";
export default (patch: boolean) => {
  const agents = { http: http.globalAgent as any, https: https.globalAgent as any };
  if (patch) {
    for (const agent of Object.values(agents)) {
      agent.maxSockets = 1;
      agent.keepAlive = true;
      agent.options.lookup = () => { throw new Error("planted by an earlier call"); };
      agent.createConnection = () => { throw new Error("planted by an earlier call"); };
      agent.on("free", () => {});
    }
  }
  const seen = (agent: any) => ({
    // Infinity by default, which JSON cannot represent (the call would fail tool_output_invalid).
    maxSockets: String(agent.maxSockets),
    keepAlive: agent.keepAlive,
    lookup: typeof agent.options.lookup,
    ownCreateConnection: Object.hasOwn(agent, "createConnection"),
    freeListeners: agent.listenerCount("free"),
  });
  return { pid: Deno.pid, http: seen(agents.http), https: seen(agents.https) };
};`;

Deno.test("what a call sets on http.globalAgent and https.globalAgent is put back before the next call", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool("agent", TOOL);
    const clean = await runner.run(call(tool, false, { timeoutMs: 60_000 }));
    assert.ok(clean.ok, JSON.stringify(clean));
    const patched = await runner.run(call(tool, true, { timeoutMs: 60_000 }));
    assert.ok(patched.ok, JSON.stringify(patched));
    const after = await runner.run(call(tool, false, { timeoutMs: 60_000 }));
    assert.ok(after.ok, JSON.stringify(after));
    const [c, p, a] = [clean, patched, after].map((r) => r.ok ? r.output as Record<string, unknown> : {});
    assert.equal(a.pid, p.pid, "the calls did not share a process: the test proves nothing");
    assert.notDeepEqual(p.http, c.http, "the patch did not take");
    // Before: maxSockets 1, keepAlive true, the planted lookup and createConnection and one more listener.
    assert.deepEqual(a.http, c.http);
    assert.deepEqual(a.https, c.https);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
