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

/**
 * The put-back reads an emitter's listeners to remove the call's: through the emitter, a call's own
 * `eventNames` on the agent, or its `EventEmitter.prototype.rawListeners` (in place until the prototype's own
 * put-back, after the listeners'), hid the listener it added, and so did an accessor of its own for the
 * agent's listener map, which the put-back left as live state. It stayed on `http.globalAgent` and heard the
 * next call's request, `Authorization` header included (outside break attempt brk44).
 */
const HIDING_TOOL = `import http from "node:http";
import { EventEmitter } from "node:events";
export default (input: { hide?: string }) => {
  const agent = http.globalAgent as any;
  if (input.hide !== undefined) {
    const spy = () => {};
    agent.on("free", spy);
    if (input.hide === "own eventNames") {
      const names = agent.eventNames.bind(agent);
      agent.eventNames = () => names().filter((name: unknown) => name !== "free");
    } else if (input.hide === "an accessor on _events") {
      // Another map to the put-back (which it tells by its stack), the real one to Node's emit.
      let real = agent._events;
      Object.defineProperty(agent, "_events", {
        configurable: true,
        enumerable: true,
        get() {
          if (!/node_guard/.test(new Error().stack ?? "")) return real;
          const shown = Object.create(null);
          for (const key of Reflect.ownKeys(real)) if (key !== "free") shown[key] = real[key];
          return shown;
        },
        set(value) {
          real = value;
        },
      });
    } else {
      const proto = EventEmitter.prototype as any;
      const raw = proto.rawListeners;
      proto.rawListeners = function (this: unknown, name: unknown) {
        return raw.call(this, name).filter((listener: unknown) => listener !== spy);
      };
    }
  }
  return { pid: Deno.pid, freeListeners: agent.listenerCount("free") };
};`;

Deno.test("a listener a call hides from the put-back of http.globalAgent's listeners is removed too", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    for (const hide of ["own eventNames", "EventEmitter.prototype.rawListeners", "an accessor on _events"]) {
      await t.step(hide, async () => {
        const tool = dir.tool(`hiding_${hide.replace(/\W+/g, "_")}`, HIDING_TOOL);
        const clean = await runner.run(call(tool, {}, { timeoutMs: 60_000 }));
        const hidden = await runner.run(call(tool, { hide }, { timeoutMs: 60_000 }));
        const after = await runner.run(call(tool, {}, { timeoutMs: 60_000 }));
        const [c, h, a] = [clean, hidden, after].map((r) => {
          assert.ok(r.ok, JSON.stringify(r));
          return r.output as { pid: number; freeListeners: number };
        });
        assert.equal(a.pid, h.pid, "the calls did not share a process: the test proves nothing");
        assert.equal(h.freeListeners, c.freeListeners + 1, "the listener was not added");
        // Before: one more, the hidden one.
        assert.equal(a.freeListeners, c.freeListeners);
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

/**
 * `http.globalAgent` is an accessor of Node's, whose setter replaces the agent in a closure (as did
 * `setGlobalAgent` of `node:_http_agent`, now refused: process_knobs_test.ts): the put-back of the recorded agent's properties never saw the
 * agent a call set in its place, which served every later call's requests and heard them, with their
 * headers, through a `free` listener (outside break attempt brk44).
 */
const REPLACING_TOOL = `import http from "node:http";
import https from "node:https";
const planted: object[] = [];
export default (input: { replace?: string }) => {
  if (input.replace === "http.globalAgent") planted.push((http as any).globalAgent = new http.Agent());
  if (input.replace === "https.globalAgent") planted.push((https as any).globalAgent = new https.Agent());
  return {
    pid: Deno.pid,
    planted: planted.filter((agent) => agent === http.globalAgent || agent === https.globalAgent).length,
  };
};`;

Deno.test("an agent a call puts in place of http.globalAgent or https.globalAgent is gone before the next call", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    for (const replace of ["http.globalAgent", "https.globalAgent"]) {
      await t.step(replace, async () => {
        const tool = dir.tool(`replacing_${replace.replace(/\W+/g, "_")}`, REPLACING_TOOL);
        const replaced = await runner.run(call(tool, { replace }, { timeoutMs: 60_000 }));
        const after = await runner.run(call(tool, {}, { timeoutMs: 60_000 }));
        const [r, a] = [replaced, after].map((result) => {
          assert.ok(result.ok, JSON.stringify(result));
          return result.output as { pid: number; planted: number };
        });
        assert.equal(a.pid, r.pid, "the calls did not share a process: the test proves nothing");
        assert.equal(r.planted, 1, "the agent was not replaced");
        // Before: 1, the call's agent served the next call.
        assert.equal(a.planted, 0);
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
