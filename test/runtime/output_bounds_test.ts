/**
 * Hole 5 of issue 10: one bad output must not stall the runtime for everyone. Real sandbox processes, a real
 * nats-server for the bus limit.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Bus, connectNats } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { startTestNats } from "../support/nats.ts";
import { call, CONTEXT, ToolDir } from "./_helpers.ts";

function failure(result: ToolResult) {
  assert.ok(!result.ok, `expected a failure, got ${JSON.stringify(result).slice(0, 200)}`);
  return result.failure;
}

Deno.test("output bounds: schema errors, depth and size are capped before they cost anything", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  try {
    await t.step("1.9 M schema violations: 100 calls of another tool succeed meanwhile", async () => {
      const bad = dir.tool("zeros", `export default () => new Array(1_900_000).fill(0);`);
      const echo = dir.tool("echo", `export default (x: unknown) => x;`);
      const outputSchema = { type: "array", items: { type: "string" } };
      await runner.warm(echo);
      const badCall = runner.run(call(bad, null, { outputSchema, timeoutMs: 30_000 }));
      const others = await Promise.all(
        Array.from({ length: 100 }, (_, i) => runner.run(call(echo, { i }, { timeoutMs: 30_000 }))),
      );
      others.forEach((r, i) => assert.deepEqual(r.ok && r.output, { i }, `call ${i} of the other tool`));
      const refused = failure(await badCall);
      assert.equal(refused.code, "tool_output_invalid");
      const violations = (refused.details as { violations: unknown[] }).violations;
      assert.ok(violations.length <= 20, `${violations.length} violations kept`);
      assert.ok(refused.message.length <= 2_200, `a message of ${refused.message.length} chars`);
    });

    await t.step("a small invalid output lists at most 20 violations", async () => {
      const tool = dir.tool("small_zeros", `export default () => new Array(500).fill(0);`);
      const refused = failure(
        await runner.run(call(tool, null, { outputSchema: { type: "array", items: { type: "string" } } })),
      );
      assert.equal((refused.details as { violations: unknown[] }).violations.length, 20);
    });

    // Outside break attempt brk42: the check tried both operator branches on the whole value below each level,
    // on the runtime's thread (26 levels, 573 bytes: 7.5 s; outputs may nest 64). 23 levels (seconds before,
    // and valid) tell the bound from a check that ends.
    await t.step(
      "an output that doubles a recursive schema's work per level stops at the check's bound",
      async () => {
        const expr = {
          type: "object",
          properties: { args: { type: "array", items: { $ref: "#/$defs/expr" } }, op: { const: "add" } },
        };
        const outputSchema = {
          $defs: {
            expr: {
              anyOf: [expr, { ...expr, properties: { ...expr.properties, op: { const: "mul" } } }, {
                type: "number",
              }],
            },
          },
          $ref: "#/$defs/expr",
        };
        const tool = dir.tool(
          "expression",
          `export default (levels: number) => {
           let value: unknown = 1;
           for (let i = 0; i < levels; i++) value = { args: [value], op: "mul" };
           return value;
         };`,
        );
        const refused = failure(await runner.run(call(tool, 23, { outputSchema, timeoutMs: 60_000 })));
        assert.equal(refused.code, "tool_output_invalid");
        assert.match(refused.message, /took more than 2000000 steps to check against the schema/);
        const shallow = await runner.run(call(tool, 8, { outputSchema }));
        assert.ok(shallow.ok, JSON.stringify(shallow));
      },
    );

    await t.step("a 300,000-deep output is refused before the runtime parses it", async () => {
      // A hostile tool skipping JSON.stringify would post its own text to the host thread: the worker's
      // postMessage is taken from tools (95332e5), so the attempt fails in the tool. The host still checks the
      // depth of a result frame's bytes (jsonTooDeep, pkg/runtime/output_limits_test.ts), and frames on fd 1
      // need the process's frame token, which no tool code sees.
      const forged = dir.tool(
        "deep_forged",
        `export default async () => {
          const text = "[".repeat(300_000) + "]".repeat(300_000);
          for (let id = 1; id < 8; id++) (globalThis as any).postMessage(["result", id, text]);
          return "not deep";
        };`,
      );
      const fresh = new ToolRunner();
      const deep = failure(await fresh.run(call(forged, null)).finally(() => fresh.close()));
      assert.equal(deep.code, "tool_threw");
      assert.match(deep.message, /postMessage is not a function/);
      const built = dir.tool(
        "deep_built",
        `export default () => { let v: unknown = 1; for (let i = 0; i < 100; i++) v = [v]; return v; };`,
      );
      assert.equal(failure(await runner.run(call(built, null))).code, "tool_output_too_large");
      const fine = dir.tool(
        "deep_ok",
        `export default () => { let v: unknown = "]]]"; for (let i = 0; i < 64; i++) v = { v }; return v; };`,
      );
      assert.ok((await runner.run(call(fine, null))).ok, "64 levels, brackets in strings, are accepted");
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("output bounds: an output too big for one NATS message is tool_output_too_large", async (t) => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "output-bounds-test" });
  const bus = new Bus(nc, { source: "test" });
  const dir = new ToolDir();
  const big = dir.tool("big", `export default (n: number) => "x".repeat(n);`);
  const maxPayload = nc.info!.max_payload;
  const execute = (n: number) =>
    bus.request(
      create(pb.ToolExecuteSchema, {
        metadata: bus.metadata(`corr-${n}`),
        workflow: { id: CONTEXT.workflowId, execId: `wf-${n}` },
        task: { id: CONTEXT.taskId, execId: `task-${n}` },
        tool: { id: "big", execId: `tool-${n}` },
        attempt: 1,
        // Just over what one message carries, whatever the server's max_payload is.
        inputJson: new TextEncoder().encode(String(maxPayload + 1024)),
        definitionJson: new TextEncoder().encode(
          JSON.stringify({ id: "big", executePath: big, permissions: {}, timeoutMs: 10_000 }),
        ),
        timeoutMs: 10_000n,
      }),
      pb.ToolExecuteResultSchema,
      { timeoutMs: 20_000 },
    );
  try {
    const runners = [
      ["the runtime's own runner", undefined],
      ["a runner whose own limit is twice max_payload", new ToolRunner({ maxOutputBytes: maxPayload * 2 })],
    ] as const;
    for (const [name, runner] of runners) {
      await t.step(`${name} (server max_payload ${maxPayload})`, async () => {
        const runtime = startRuntime({ nc, bus, runner });
        try {
          const reply = await execute(runner ? 2 : 1);
          assert.equal(reply.result.case, "failed");
          const error = reply.result.case === "failed" ? reply.result.value.error : undefined;
          assert.equal(error?.code, "tool_output_too_large", error?.message);
        } finally {
          await runtime.stop();
        }
      });
    }
  } finally {
    await nc.close();
    await nats.stop();
    dir.cleanup();
  }
});

Deno.test("review R-S2: an output whose keys are Object.prototype's names comes back whole", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  try {
    const text = '{"constructor":1,"hasOwnProperty":"x","toString":true,"valueOf":null,"__proto__":{"a":1},' +
      '"nested":[{"isPrototypeOf":2,"__defineGetter__":3}]}';
    const tool = dir.tool("protokeys", `export default () => JSON.parse(${JSON.stringify(text)});`);
    const result = await runner.run(call(tool, null));
    // Before: tool_output_invalid, as the copy assigned each key and the frozen Object.prototype's
    // non-writable `constructor` refused the assignment.
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(JSON.stringify(result.output), text);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
