/**
 * Knobs of the whole sandbox process reachable from Node's built-ins: set by one call, each would act on
 * every later call of the warm process (a V8 flag, a heap snapshot written near the heap limit, promise
 * hooks that run for every later promise, an uncaught-exception callback). Each is refused with a named
 * failure code: `tool_import_refused` for a module refused whole (its functions are named exports, which no
 * patch reaches), `tool_permission_denied` for a function refused at run time. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

function failure(result: ToolResult): { code: string; message: string } {
  assert.ok(!result.ok, `expected a failure, got ${JSON.stringify(result).slice(0, 500)}`);
  return result.failure;
}

const REFUSED_MODULES: Record<string, string> = {
  "v8.setFlagsFromString":
    `import { setFlagsFromString } from "node:v8"; export default () => setFlagsFromString("--no-lazy");`,
  "v8.setHeapSnapshotNearHeapLimit":
    `import v8 from "node:v8"; export default () => v8.setHeapSnapshotNearHeapLimit(1);`,
  "v8.promiseHooks":
    `import * as v8 from "node:v8"; export default () => (v8 as any).default.promiseHooks.onInit(() => {});`,
  "v8.getHeapSnapshot":
    `import { getHeapSnapshot } from "node:v8"; export default () => typeof getHeapSnapshot();`,
  "trace_events.createTracing":
    `import { createTracing } from "node:trace_events"; export default () => createTracing({ categories: ["v8"] }).enable();`,
  // brk44: the trusted authorities of every later call's connections; a named export, reached by name or
  // through the namespace.
  "tls.setDefaultCACertificates, named":
    `import { setDefaultCACertificates } from "node:tls"; export default () => setDefaultCACertificates([]);`,
  "tls.setDefaultCACertificates, through the namespace":
    `import * as tls from "node:tls"; export default () => tls.setDefaultCACertificates([]);`,
  // brk44: Node's internal modules; this one replaced the agent every later call's requests use.
  "_http_agent.setGlobalAgent":
    `import { Agent, setGlobalAgent } from "node:_http_agent"; export default () => (setGlobalAgent as any)(new (Agent as any)());`,
};

const REFUSED_AT_RUN_TIME: Record<string, string> = {
  "process.setUncaughtExceptionCaptureCallback":
    `export default () => (process as any).setUncaughtExceptionCaptureCallback(() => {});`,
  "process.setSourceMapsEnabled": `export default () => (process as any).setSourceMapsEnabled(true);`,
  "process.binding": `export default () => Object.keys((process as any).binding("fs"));`,
  // A revoked permission cannot be given back: later calls of other executions were denied it.
  "Deno.permissions.revoke": `export default () => Deno.permissions.revoke({ name: "read" });`,
  "Deno.permissions.revokeSync": `export default () => Deno.permissions.revokeSync({ name: "env" });`,
  "process.report.writeReport": `export default () => (process as any).report.writeReport();`,
  "async_hooks.createHook(…).enable()":
    `import { createHook } from "node:async_hooks"; export default () => { createHook({ init() {} }).enable(); };`,
  "getBuiltinModule(node:v8)":
    `export default () => (process as any).getBuiltinModule("node:v8").setFlagsFromString("--no-lazy");`,
  "getBuiltinModule(trace_events)": `export default () => (process as any).getBuiltinModule("trace_events");`,
  "getBuiltinModule(node:module).register":
    `export default () => (process as any).getBuiltinModule("node:module").register("data:text/javascript,");`,
  "getBuiltinModule(_http_agent)": `export default () => (process as any).getBuiltinModule("_http_agent");`,
  // brk44: every later call's node:http requests, with their headers, went to the proxy one call set.
  "http.setGlobalProxyFromEnv":
    `import http from "node:http"; export default () => { (http as any).setGlobalProxyFromEnv({ HTTP_PROXY: "http://127.0.0.1:9" }); };`,
  "getBuiltinModule(node:http).setGlobalProxyFromEnv":
    `export default () => { (process as any).getBuiltinModule("node:http").setGlobalProxyFromEnv({ HTTP_PROXY: "http://127.0.0.1:9" }); };`,
  "tls.setDefaultCACertificates on the module's object":
    `import tls from "node:tls"; export default () => { (tls as any).setDefaultCACertificates([]); };`,
};

Deno.test("process-wide knobs of Node's built-ins are refused with a named code", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    for (const [name, source] of Object.entries(REFUSED_MODULES)) {
      await t.step(`${name}: the module is refused`, async () => {
        const tool = dir.tool(`m_${name.replace(/\W+/g, "_")}`, source);
        const f = failure(await runner.run(call(tool, null, { timeoutMs: 60_000 })));
        assert.equal(f.code, "tool_import_refused", f.message);
        assert.match(f.message, /whole sandbox process/);
      });
    }
    for (const [name, source] of Object.entries(REFUSED_AT_RUN_TIME)) {
      await t.step(`${name}: refused at run time`, async () => {
        const tool = dir.tool(`r_${name.replace(/\W+/g, "_")}`, source);
        const f = failure(await runner.run(call(tool, null, { timeoutMs: 60_000 })));
        assert.equal(f.code, "tool_permission_denied", f.message);
        assert.match(f.message, /refused in a tool sandbox/);
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

/**
 * `node:process`'s named exports are what its default export held before the sandbox guarded it (brk44):
 * `getBuiltinModule` reached every refused built-in (`node:vm` ran a string as code, `node:v8` set V8's
 * flags), `nextTick` ran an ended call's ticks after its reset unnoted (a chain of them replaced `atob` with
 * one holding execution A's secret for execution B's call, as in late_reset_test.ts), `argv` held the
 * sandbox's command line. The import policy refuses the ways to them; `import process from "node:process"`
 * and its other names still load.
 */
const REFUSED_PROCESS_EXPORTS: Record<string, string> = {
  getBuiltinModule:
    `import { getBuiltinModule } from "node:process"; export default () => (getBuiltinModule as any)("node:vm").runInThisContext("6 * 7");`,
  nextTick:
    `import { nextTick } from "node:process"; export default () => new Promise((resolve) => nextTick(() => resolve("ticked")));`,
  argv: `import { argv } from "node:process"; export default () => argv;`,
  "the namespace":
    `import * as p from "node:process"; export default () => typeof (p as any).getBuiltinModule;`,
  "import()": `export default async () => typeof (await import("node:process")).getBuiltinModule;`,
};

Deno.test("node:process's unguarded named exports are refused, its default and other names load", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    for (const [name, source] of Object.entries(REFUSED_PROCESS_EXPORTS)) {
      await t.step(`${name}: refused`, async () => {
        const tool = dir.tool(`p_${name.replace(/\W+/g, "_")}`, source);
        const f = failure(await runner.run(call(tool, null, { timeoutMs: 60_000 })));
        assert.equal(f.code, "tool_import_refused", f.message);
        assert.match(f.message, /of "node:process" is refused/);
      });
    }
    await t.step("the default export and other names load", async () => {
      const tool = dir.tool(
        "p_allowed",
        `import process from "node:process"; import { env, hrtime } from "node:process";
         export default () => [typeof process.nextTick, typeof env, typeof hrtime];`,
      );
      const result = await runner.run(call(tool, null, { timeoutMs: 60_000 }));
      assert.deepEqual(
        result.ok && result.output,
        ["function", "object", "function"],
        JSON.stringify(result),
      );
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("a promise hook one call tried to enable never runs in a later call", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = dir.tool(
      "hook_later",
      `import { createHook } from "node:async_hooks";
       const seen: string[] = [];
       export default async (input: { who: string }) => {
         if (input.who === "first") {
           try { createHook({ init: () => { seen.push("init"); } }).enable(); } catch { /* refused */ }
           return { pid: Deno.pid };
         }
         await Promise.resolve(input.who);
         return { pid: Deno.pid, seen: seen.length };
       };`,
    );
    const first = await runner.run(call(tool, { who: "first" }, { timeoutMs: 60_000 }));
    assert.ok(first.ok, JSON.stringify(first));
    const second = await runner.run(call(tool, { who: "second" }, { timeoutMs: 60_000 }));
    assert.ok(second.ok, JSON.stringify(second));
    const out = second.output as { pid: number; seen: number };
    assert.equal(out.pid, (first.output as { pid: number }).pid, "one warm process ran both calls");
    assert.equal(out.seen, 0, "the first call's hook ran for the second call's promises");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("defaults Node keeps in closures, set by one call, are put back before the next (brk44)", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    // Named imports: bound to Deno's functions, which no patch of a module's object reaches.
    const tool = dir.tool(
      "closure_defaults",
      `import { getDefaultResultOrder, setDefaultResultOrder } from "node:dns";
       import * as net from "node:net";
       import { getDefaultHighWaterMark, setDefaultHighWaterMark } from "node:stream";
       const read = () => ({
         pid: Deno.pid,
         order: getDefaultResultOrder(),
         family: (net as any).getDefaultAutoSelectFamily(),
         attempt: (net as any).getDefaultAutoSelectFamilyAttemptTimeout(),
         bytes: getDefaultHighWaterMark(false),
         objects: getDefaultHighWaterMark(true),
       });
       export default (input: { set: boolean }) => {
         if (input.set) {
           setDefaultResultOrder("ipv6first");
           (net as any).setDefaultAutoSelectFamily(false);
           (net as any).setDefaultAutoSelectFamilyAttemptTimeout(999);
           setDefaultHighWaterMark(false, 7);
           setDefaultHighWaterMark(true, 3);
         }
         return read();
       };`,
    );
    const fresh = await runner.run(call(tool, { set: false }, { timeoutMs: 60_000 }));
    assert.ok(fresh.ok, JSON.stringify(fresh));
    const set = await runner.run(call(tool, { set: true }, { timeoutMs: 60_000 }));
    assert.ok(set.ok, JSON.stringify(set));
    assert.notDeepEqual(set.output, fresh.output, "the call changed the defaults for itself");
    const next = await runner.run(call(tool, { set: false }, { timeoutMs: 60_000 }));
    assert.ok(next.ok, JSON.stringify(next));
    assert.equal(
      (next.output as { pid: number }).pid,
      (fresh.output as { pid: number }).pid,
      "one warm process",
    );
    assert.deepEqual(next.output, fresh.output, "the next call ran under the defaults the earlier call set");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
