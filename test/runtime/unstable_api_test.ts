/**
 * Deno ends a process with exit code 70 when its code reaches an API behind an unstable flag the process
 * lacks. A tool's `Deno.connect({ transport: "vsock" })` so ended its sandbox: the call failed `tool_crashed`,
 * `retryable: true`, and a retry policy ran it again to the same end (outside break attempt sbx29, noted
 * there). These calls are now refused in the worker as a permission (`tool_permission_denied`, not
 * retryable), naming the API, and the sandbox lives on. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/** Each attempt, by name; `pid` answers the process's id, to tell a sandbox that lived on from a new one. */
const TOOL = `
const attempts: Record<string, () => unknown> = {
  pid: () => Deno.pid,
  connect: () => Deno.connect({ transport: "vsock", cid: 2, port: 1 } as unknown as Deno.ConnectOptions),
  listen: () => Deno.listen({ transport: "vsock", cid: 2, port: 1 } as unknown as Deno.ListenOptions),
  serve: () => Deno.serve({ cid: 2, port: 1, onListen() {} } as unknown as Deno.ServeOptions, () => new Response()),
  // A getter that answers "tcp" to a check and "vsock" to Deno.
  connectTurncoat: () => {
    let reads = 0;
    return Deno.connect({ get transport() { return reads++ === 0 ? "tcp" : "vsock"; }, cid: 2, port: 1 } as never);
  },
  // A Proxy that hides its own "cid" from a check and shows it to Deno.
  serveTurncoat: () => {
    let asked = 0;
    const options = new Proxy({ onListen() {} }, {
      getOwnPropertyDescriptor(target, key) {
        if (key === "cid" && asked++ > 0) return { value: 2, writable: true, enumerable: true, configurable: true };
        return Reflect.getOwnPropertyDescriptor(target, key);
      },
      get(target, key, receiver) {
        return key === "cid" ? 2 : Reflect.get(target, key, receiver);
      },
    });
    return Deno.serve(options as never, () => new Response());
  },
};
export default async (input: { attempt: string }) => await attempts[input.attempt]();
`;

Deno.test("vsock is refused as a permission in a tool, naming the API; the sandbox lives on", async () => {
  const dir = new ToolDir("compozy-unstable-");
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool("vsock", TOOL);
    const run = (attempt: string) => runner.run(call(tool, { attempt }, { timeoutMs: 30_000 }));
    const before = await run("pid");
    assert.ok(before.ok, JSON.stringify(before));
    for (
      const [attempt, api] of [
        ["connect", 'Deno.connect({ transport: "vsock" })'],
        ["listen", 'Deno.listen({ transport: "vsock" })'],
        ["serve", "Deno.serve({ cid })"],
      ]
    ) {
      const result = await run(attempt);
      assert.ok(!result.ok, `${attempt}: ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_permission_denied", `${attempt}: ${result.failure.message}`);
      assert.equal(result.failure.retryable, false);
      assert.ok(result.failure.message.includes(api), result.failure.message);
      assert.match(result.failure.message, /--unstable-vsock/);
    }
    // Options that change their answer between a check and Deno's own read reach Deno as the check saw them:
    // a plain TCP request then, refused for want of a `net` grant, in the same process.
    for (const attempt of ["connectTurncoat", "serveTurncoat"]) {
      const result = await run(attempt);
      assert.ok(!result.ok, `${attempt}: ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_permission_denied", `${attempt}: ${result.failure.message}`);
      assert.match(result.failure.message, /Requires net access/);
    }
    const after = await run("pid");
    assert.ok(after.ok, JSON.stringify(after));
    assert.equal(after.output, before.output, "the same sandbox process answered before and after");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
