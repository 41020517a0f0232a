/**
 * ToolRunner behaviour with real tool files and real sandbox processes: results, schemas, the ways a tool
 * can fail, and that every failure ends only its own call.
 */
import assert from "node:assert/strict";
import { ToolFailure, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

Deno.test("ToolRunner runs tools and names every failure", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxOutputBytes: 64 * 1024, maxLogBytes: 4 * 1024 });
  try {
    await t.step("runs the default export with input and context, and returns its output", async () => {
      dir.tool("lib", `export const greeting = "Hello";`);
      const tool = dir.tool(
        "greet",
        `import { greeting } from "./lib.ts";
         export default (input: { name: string }, ctx: Record<string, unknown>) =>
           ({ text: greeting + " " + input.name, ctx: { ...ctx, log: typeof ctx.log } });`,
      );
      const result = await runner.run(call(tool, { name: "Ada" }));
      assert.ok(result.ok, JSON.stringify(result));
      assert.deepEqual(result.output, { text: "Hello Ada", ctx: { ...CONTEXT, log: "object" } });
      assert.ok(result.durationMs > 0);
    });

    await t.step("accepts a module exporting run, and async tools", async () => {
      const tool = dir.tool("run_export", `export async function run(n: number) { await 0; return n * 2; }`);
      const result = await runner.run(call(tool, 21));
      assert.deepEqual(result, { ok: true, output: 42, durationMs: result.durationMs });
    });

    await t.step("a literal dynamic import of a file in the tool's folder works", async () => {
      dir.tool("lazy", `export const lazy = "loaded later";`);
      const tool = dir.tool("imports_lazily", `export default async () => (await import("./lazy.ts")).lazy;`);
      const result = await runner.run(call(tool, null));
      assert.deepEqual(result.ok && result.output, "loaded later");
    });

    await t.step("a tool that returns nothing succeeds with null", async () => {
      const result = await runner.run(call(dir.tool("void", `export default () => {};`), {}));
      assert.ok(result.ok);
      assert.equal(result.output, null);
    });

    await t.step("console output and ctx.log become log entries with levels", async () => {
      const tool = dir.tool(
        "logs",
        `export default (_: unknown, ctx: any) => {
           console.log("plain", { a: 1 }); console.debug("dbg %d", 7); console.warn("careful");
           console.error(new Error("shown")); ctx.log.info("from ctx"); return 1;
         };`,
      );
      const logs: { level: string; message: string }[] = [];
      const result = await runner.run(call(tool, null, { onLog: (e) => logs.push(e) }));
      assert.ok(result.ok);
      assert.deepEqual(logs.map((l) => l.level), ["info", "debug", "warn", "error", "info"]);
      assert.equal(logs[0].message, "plain { a: 1 }");
      assert.equal(logs[1].message, "dbg 7");
      assert.match(logs[3].message, /Error: shown/);
      assert.equal(logs[4].message, "from ctx");
    });

    await t.step(
      "Deno.stdout's and Deno.stderr's streams become log entries; Deno.stdin's is empty",
      async () => {
        // Before (found in break attempt brk44): the sandbox made each stream once, before the realm's freeze,
        // which froze the stream itself, and every `getWriter()` (so `pipeTo`) threw a TypeError.
        const tool = dir.tool(
          "streams",
          `export default async () => {
           await new Response("through stdout").body!.pipeTo(Deno.stdout.writable);
           const writer = Deno.stderr.writable.getWriter();
           await writer.write(new TextEncoder().encode("through stderr"));
           writer.releaseLock();
           return (await Deno.stdin.readable.getReader().read()).done;
         };`,
        );
        const logs: { level: string; message: string }[] = [];
        const result = await runner.run(call(tool, null, { onLog: (e) => logs.push(e) }));
        assert.deepEqual(result.ok && result.output, true, JSON.stringify(result));
        assert.deepEqual(logs, [
          { level: "info", message: "through stdout" },
          { level: "error", message: "through stderr" },
        ]);
      },
    );

    await t.step(
      "input is checked against the input schema before the tool runs, naming the field",
      async () => {
        const tool = dir.tool("echo", `export default (input: unknown) => input;`);
        const inputSchema = {
          type: "object",
          properties: { city: { type: "string" }, days: { type: "array", items: { type: "integer" } } },
          required: ["city"],
        };
        const result = await runner.run(call(tool, { days: [1, 2.5] }, { inputSchema }));
        assert.ok(!result.ok);
        assert.equal(result.failure.code, "tool_input_invalid");
        assert.equal(result.failure.retryable, false);
        assert.match(result.failure.message, /city: is required/);
        assert.match(result.failure.message, /days\[1\]: must be integer/);
        assert.deepEqual(result.failure.details, {
          violations: [
            { path: "city", message: "is required" },
            { path: "days[1]", message: "must be integer" },
          ],
        });
        const ok = await runner.run(call(tool, { city: "Lisbon", days: [1] }, { inputSchema }));
        assert.ok(ok.ok);
      },
    );

    await t.step("output is checked against the output schema", async () => {
      const tool = dir.tool("bad_output", `export default () => ({ temp: "hot" });`);
      const outputSchema = { type: "object", properties: { temp: { type: "number" } }, required: ["temp"] };
      const result = await runner.run(call(tool, {}, { outputSchema }));
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_output_invalid");
      assert.match(result.failure.message, /temp: must be number/);
    });

    await t.step(
      "a thrown Error fails tool_threw, retryable, keeping the tool's error as cause",
      async () => {
        const tool = dir.tool(
          "throws",
          `export default () => { throw new TypeError("bad city", { cause: new Error("upstream") }); };`,
        );
        const result = await runner.run(call(tool, {}));
        assert.ok(!result.ok);
        assert.ok(result.failure instanceof ToolFailure);
        assert.equal(result.failure.code, "tool_threw");
        assert.equal(result.failure.retryable, true);
        assert.equal(result.failure.message, 'Tool "test_tool" threw TypeError: bad city');
        const cause = result.failure.cause as Error;
        assert.equal(cause.name, "TypeError");
        assert.match(cause.stack ?? "", /throws\.ts/);
        assert.equal((cause.cause as Error).message, "upstream");
      },
    );

    await t.step("a thrown non-Error fails tool_threw with the value in the details", async () => {
      const tool = dir.tool("throws_value", `export default () => { throw { code: 42, why: "nope" }; };`);
      const result = await runner.run(call(tool, {}));
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_threw");
      assert.match(result.failure.message, /non-Error value: \{ code: 42, why: 'nope' \}/);
      assert.deepEqual(result.failure.details, { thrown: { code: 42, why: "nope" } });
      const str = await runner.run(
        call(dir.tool("throws_string", `export default () => { throw "boom"; };`), {}),
      );
      assert.ok(!str.ok);
      assert.match(str.failure.message, /non-Error value: boom/);
    });

    await t.step("a tool that never resolves fails tool_timeout and its process is killed", async () => {
      const tool = dir.tool("hangs", `export default () => new Promise(() => {});`);
      await runner.warm(tool);
      const before = runner.stats().spawned;
      const result = await runner.run(call(tool, {}, { timeoutMs: 300 }));
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_timeout");
      assert.equal(result.failure.retryable, true);
      // It ran out its time-out (timers round to the millisecond), whatever the machine's load after that.
      assert.ok(result.durationMs >= 299, `took ${result.durationMs} ms`);
      const echo = await runner.run(
        call(dir.tool("echo2", `export default (i: unknown) => i;`), "still here"),
      );
      assert.deepEqual(echo.ok && echo.output, "still here");
      assert.ok(runner.stats().spawned > before, "the killed process was replaced");
    });

    await t.step("printing megabytes is capped in the logs and the call still succeeds", async () => {
      const tool = dir.tool(
        "chatty",
        `import { writeSync } from "node:fs";
         export default () => {
           const line = "x".repeat(1000);
           for (let i = 0; i < 3000; i++) console.log(line);
           Deno.stdout.writeSync(new TextEncoder().encode("y".repeat(1_000_000)));
           writeSync(1, "z".repeat(1_000_000));
           process.stdout.write("p".repeat(1_000_000));
           return "done";
         };`,
      );
      let bytes = 0;
      const result = await runner.run(call(tool, {}, { onLog: (e) => (bytes += e.message.length) }));
      assert.deepEqual(result.ok && result.output, "done");
      assert.ok(bytes <= 4 * 1024 + 200, `got ${bytes} log bytes`);
      const next = await runner.run(call(tool, {}));
      assert.ok(next.ok, "raw writes to stdout do not break the protocol");
    });

    await t.step("an output over maxOutputBytes fails tool_output_too_large", async () => {
      const tool = dir.tool("big_output", `export default () => "x".repeat(100 * 1024);`);
      const result = await runner.run(call(tool, {}));
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_output_too_large");
      assert.equal(result.failure.retryable, false);
      const multiByte = await runner.run(
        call(dir.tool("big_utf8", `export default () => "é".repeat(40_000);`), {}),
      );
      assert.ok(!multiByte.ok, "the limit counts UTF-8 bytes");
      assert.equal(multiByte.failure.code, "tool_output_too_large");
    });

    await t.step("an output that is not JSON fails tool_output_invalid", async () => {
      const bigint = await runner.run(call(dir.tool("bigint", `export default () => ({ n: 1n });`), {}));
      assert.ok(!bigint.ok);
      assert.equal(bigint.failure.code, "tool_output_invalid");
      const cyclic = dir.tool("cyclic", `export default () => { const a: any = {}; a.self = a; return a; };`);
      const result = await runner.run(call(cyclic, {}));
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_output_invalid");
    });

    await t.step("Deno.exit in a tool is a crash of that call only", async () => {
      const tool = dir.tool("exits", `export default () => { Deno.exit(3); };`);
      const result = await runner.run(call(tool, {}));
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_crashed");
      assert.match(result.failure.message, /exit\(3\)/);
      const again = await runner.run(call(dir.tool("fine", `export default () => "ok";`), {}));
      assert.ok(again.ok);
    });

    await t.step("a module without a default or run function fails tool_module_invalid", async () => {
      const result = await runner.run(call(dir.tool("no_export", `export const x = 1;`), {}));
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_module_invalid");
      assert.match(result.failure.message, /neither a default function nor a function named run/);
    });

    await t.step("a syntax error or a missing module fails tool_module_invalid", async () => {
      const syntax = await runner.run(call(dir.tool("syntax", `export default ( => 1;`), {}));
      assert.ok(!syntax.ok);
      assert.equal(syntax.failure.code, "tool_module_invalid");
      const missing = await runner.run(call(`${dir.path}/nowhere.ts`, {}));
      assert.ok(!missing.ok);
      assert.equal(missing.failure.code, "tool_module_invalid");
      const relative = await runner.run(call("tools/x.ts", {}));
      assert.ok(!relative.ok);
      assert.equal(relative.failure.code, "tool_module_invalid");
    });

    await t.step("a module that throws while loading fails tool_module_invalid", async () => {
      const result = await runner.run(
        call(dir.tool("top_throw", `throw new Error("no config");\nexport default () => 1;`), {}),
      );
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_module_invalid");
      assert.match(result.failure.message, /no config/);
    });

    await t.step("input that is not JSON fails tool_input_invalid without starting anything", async () => {
      const result = await runner.run(
        call(dir.tool("echo3", `export default (i: unknown) => i;`), { n: 1n }),
      );
      assert.ok(!result.ok);
      assert.equal(result.failure.code, "tool_input_invalid");
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("ToolRunner checks its options and refuses calls after close", async () => {
  assert.throws(
    () => new ToolRunner({ heapLimitMb: 0 }),
    /Cannot create ToolRunner as 'heapLimitMb' must be a positive integer: current value is 0/,
  );
  const runner = new ToolRunner();
  await runner.close();
  const result = await runner.run(call("/nowhere/x.ts", {}));
  assert.ok(!result.ok);
  assert.equal(result.failure.code, "tool_crashed");
});
