/**
 * What a call sets as the prototype of the global object, or of an object of Node's the sandbox puts back,
 * does not reach the next call (break attempt brk41). The reset of globals put back the global object's own
 * keys and its extensibility, and Node's put-back their objects' own properties, but neither their
 * prototypes: a call that made a proxy the global object's prototype (or `process`'s, or
 * `http.globalAgent`'s) had its trap run during every later call of the warm process, maybe another
 * execution's, for each inherited or missing name (`dispatchEvent`, `addEventListener`, `typeof Bun`,
 * `process.on`, the agent's `addRequest`), where it saw that call's data and could answer for it. Real
 * sandbox processes; the calls run in the same process (asserted by pid).
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

/**
 * Step 1 (execution A) makes a proxy `target`'s prototype, whose trap keeps what `member` is called with;
 * step 2 (execution B) calls `use` with its secret; step 3 (execution A again) reads what the trap kept.
 */
function tool(imports: string, target: string, member: string, use: string): string {
  return `${imports}
  export default (input: { step: number; secret: string }) => {
    const target: any = ${target};
    if (input.step === 1) {
      const seen: string[] = [];
      const proto = Object.getPrototypeOf(target);
      Object.setPrototypeOf(target, new Proxy(proto, {
        get(t, key, receiver) {
          if (key === "__seen") return seen.join(",");
          const value = Reflect.get(t, key, receiver);
          if (key !== ${JSON.stringify(member)} || typeof value !== "function") return value;
          return function (this: unknown, ...args: unknown[]) {
            seen.push(JSON.stringify(args, (_k, v) => typeof v === "object" && v !== null && "detail" in v ? v.detail : v));
            return Reflect.apply(value, this, args);
          };
        },
      }));
      return { pid: Deno.pid, out: "planted" };
    }
    if (input.step === 2) {
      const secret = input.secret;
      ${use}
      return { pid: Deno.pid, out: "used" };
    }
    return { pid: Deno.pid, out: String(target.__seen ?? "nothing") };
  };`;
}

Deno.test("a prototype a call set does not reach the next call", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const run = async (path: string, step: number) => {
    const result = await runner.run(
      call(path, { step, secret: step === 2 ? "B's secret" : "A's secret" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: step === 2 ? "exec-B" : "exec-A" },
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    return result.output as { pid: number; out: string };
  };
  const cases: Record<string, [string, string, string, string]> = {
    "the global object's (dispatchEvent)": [
      "",
      "globalThis",
      "dispatchEvent",
      `dispatchEvent(new CustomEvent("progress", { detail: secret }));`,
    ],
    "process's (process.emit, Node)": [
      `import process from "node:process";`,
      "process",
      "emit",
      `process.emit("progress", secret);`,
    ],
    "http.globalAgent's (addRequest, Node)": [
      `import http from "node:http";`,
      "http.globalAgent",
      "addRequest",
      `const request = http.get("http://127.0.0.1:9/", { headers: { authorization: secret } });
      request.on("error", () => {});
      request.destroy();`,
    ],
  };
  try {
    for (const [name, [imports, target, member, use]] of Object.entries(cases)) {
      await t.step(name, async () => {
        const path = dir.tool(name.replace(/\W+/g, "_"), tool(imports, target, member, use));
        const planted = await run(path, 1);
        const used = await run(path, 2);
        const read = await run(path, 3);
        assert.equal(used.pid, planted.pid, "B did not run in A's process: the test proves nothing");
        assert.equal(read.pid, planted.pid, "A's second call did not run in the same process");
        // Before: A's trap kept what B's call passed (B's secret) and A's next call read it.
        assert.ok(!read.out.includes("B's secret"), read.out);
        assert.equal(read.out, "nothing");
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("a prototype a call gave the global object's listener list does not reach the next call", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  // Deno keeps the list under an unnamed symbol of the global object, made with no prototype.
  const path = dir.tool(
    "listener_list",
    `export default (input: { step: number; secret: string }) => {
      const key = Object.getOwnPropertySymbols(globalThis)
        .find((symbol) => (globalThis as any)[symbol]?.listeners?.error !== undefined);
      const listeners = (globalThis as any)[key!].listeners;
      if (input.step === 1) {
        const seen: string[] = [];
        const listener = (event: CustomEvent) => seen.push(String(event.detail));
        Object.setPrototypeOf(listeners, {
          progress: [Object.freeze({ callback: listener, options: { capture: false } })],
          seen,
        });
        return { pid: Deno.pid, out: "planted" };
      }
      if (input.step === 2) {
        dispatchEvent(new CustomEvent("progress", { detail: input.secret }));
        return { pid: Deno.pid, out: "used" };
      }
      return { pid: Deno.pid, out: String(listeners.seen ?? "nothing") };
    };`,
  );
  const run = async (step: number) => {
    const result = await runner.run(
      call(path, { step, secret: step === 2 ? "B's secret" : "A's secret" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: step === 2 ? "exec-B" : "exec-A" },
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    return result.output as { pid: number; out: string };
  };
  try {
    const planted = await run(1);
    const used = await run(2);
    const read = await run(3);
    assert.equal(used.pid, planted.pid, "B did not run in A's process: the test proves nothing");
    assert.equal(read.pid, planted.pid, "A's second call did not run in the same process");
    // Before: "B's secret": A's listener, found through the prototype, heard B's event.
    assert.equal(read.out, "nothing");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("a prototype a call gave an emitter's listener map does not reach the next call (Node)", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const run = async (path: string, step: number) => {
    const result = await runner.run(
      call(path, { step, secret: step === 2 ? "B's secret" : "A's secret" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: step === 2 ? "exec-B" : "exec-A" },
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    return result.output as { pid: number; out: string };
  };
  // Node makes `_events` with no prototype; the put-back of listeners reads its own keys only.
  try {
    for (const [name, target] of [["process", "process"], ["http.globalAgent", "http.globalAgent"]]) {
      await t.step(name, async () => {
        const path = dir.tool(
          `events_${name.replace(/\W+/g, "_")}`,
          `import process from "node:process";
        import http from "node:http";
        export default (input: { step: number; secret: string }) => {
          const target: any = ${target};
          if (input.step === 1) {
            const seen: string[] = [];
            Object.setPrototypeOf(target._events, { progress: (value: unknown) => seen.push(String(value)), seen });
            return { pid: Deno.pid, out: "planted" };
          }
          if (input.step === 2) {
            target.emit("progress", input.secret);
            return { pid: Deno.pid, out: "used" };
          }
          return { pid: Deno.pid, out: String(target._events.seen ?? "nothing") };
        };`,
        );
        const planted = await run(path, 1);
        const used = await run(path, 2);
        const read = await run(path, 3);
        assert.equal(used.pid, planted.pid, "B did not run in A's process: the test proves nothing");
        assert.equal(read.pid, planted.pid, "A's second call did not run in the same process");
        // Before: "B's secret": A's listener, found through the map's prototype, heard B's emit.
        assert.equal(read.out, "nothing");
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("a listener a call added to process.stdout or stderr does not hear the next call (Node)", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const run = async (path: string, step: number) => {
    const result = await runner.run(
      call(path, { step, secret: step === 2 ? "B's secret" : "A's secret" }, {
        timeoutMs: 60_000,
        context: { ...CONTEXT, workflowExecId: step === 2 ? "exec-B" : "exec-A" },
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    return result.output as { pid: number; out: string };
  };
  // The stream had no listener of its own: the removal of the call's last one makes Node swap in a new
  // `_events` map, and the put-back of own properties then restored the old map, the listener in it (brk41).
  try {
    for (const stream of ["stdout", "stderr"]) {
      await t.step(stream, async () => {
        const path = dir.tool(
          `listens_${stream}`,
          `import process from "node:process";
        const seen: string[] = [];
        export default (input: { step: number; secret: string }) => {
          if (input.step === 1) {
            process.${stream}.on("progress", (value: unknown) => seen.push(String(value)));
            return { pid: Deno.pid, out: "planted" };
          }
          if (input.step === 2) {
            process.${stream}.emit("progress", input.secret);
            return { pid: Deno.pid, out: "used" };
          }
          return { pid: Deno.pid, out: seen.join(",") || "nothing" };
        };`,
        );
        const planted = await run(path, 1);
        const used = await run(path, 2);
        const read = await run(path, 3);
        assert.equal(used.pid, planted.pid, "B did not run in A's process: the test proves nothing");
        assert.equal(read.pid, planted.pid, "A's second call did not run in the same process");
        // Before: "B's secret": A's listener, kept in the map the put-back restored, heard B's emit.
        assert.equal(read.out, "nothing");
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
