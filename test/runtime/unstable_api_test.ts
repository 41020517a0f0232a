/**
 * Deno ends a process with exit code 70 when its code reaches an API behind an unstable flag the process
 * lacks. A tool's `Deno.connect({ transport: "vsock" })` so ended its sandbox: the call failed `tool_crashed`,
 * `retryable: true`, and a retry policy ran it again to the same end (outside break attempt sbx29, noted
 * there). These calls are now refused in the worker as a permission (`tool_permission_denied`, not
 * retryable), naming the API, and the sandbox lives on. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { join } from "node:path";
import { call, ToolDir } from "./_helpers.ts";

/** Each attempt, by name; `pid` answers the process's id, to tell a sandbox that lived on from a new one. */
const TOOL = `
const attempts: Record<string, () => unknown> = {
  pid: () => Deno.pid,
  connect: () => Deno.connect({ transport: "vsock", cid: 2, port: 1 } as unknown as Deno.ConnectOptions),
  listen: () => Deno.listen({ transport: "vsock", cid: 2, port: 1 } as unknown as Deno.ListenOptions),
  serve: () => Deno.serve({ cid: 2, port: 1, onListen() {} } as unknown as Deno.ServeOptions, () => new Response()),
  // A function is an object to Deno, which reads the options off it (brk33: before, exit 70).
  connectFunction: () => Deno.connect(Object.assign(() => {}, { transport: "vsock", cid: 2, port: 1 }) as never),
  listenFunction: () => Deno.listen(Object.assign(() => {}, { transport: "vsock", cid: 2, port: 1 }) as never),
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
        ["connectFunction", 'Deno.connect({ transport: "vsock" })'],
        ["listenFunction", 'Deno.listen({ transport: "vsock" })'],
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

/**
 * `Deno.createHttpClient({ proxy: { transport: "vsock" } })` needs no unstable flag: with `net: true` it
 * opened an `AF_VSOCK` socket to the VM host (cid 2) from a sandbox and sent the request there (issue 10,
 * sbx: strace showed `connect(AF_VSOCK, svm_cid=VMADDR_CID_HOST)`), past the deny list, which names
 * addresses and ports only. Refused as the other vsock APIs are; options changing their answer between the
 * check and Deno's read reach Deno as the check saw them: a TCP proxy at 127.0.0.1:1, where nothing listens.
 */
const PROXY_TOOL = `
const vsock = { transport: "vsock", cid: 2, port: 1 };
const attempts: Record<string, () => unknown> = {
  proxy: () => Deno.createHttpClient({ proxy: vsock } as never),
  // A function is an object to Deno, which reads the proxy off it (brk33: before, the VM host answered).
  proxyFunction: () => Deno.createHttpClient({ proxy: Object.assign(() => {}, vsock) } as never),
  proxyTurncoat: () => {
    let reads = 0;
    const proxy = { get transport() { return reads++ === 0 ? "tcp" : "vsock"; }, hostname: "127.0.0.1", port: 1, cid: 2 };
    return Deno.createHttpClient({ proxy } as never);
  },
  // Options beside the proxy still reach Deno, which refuses this pair itself.
  optionsKept: () => Deno.createHttpClient({ http1: false, http2: false, proxy: { url: "http://127.0.0.1:1" } } as never),
  optionsTurncoat: () => {
    let reads = 0;
    const options = { get proxy() { return reads++ === 0 ? { url: "http://127.0.0.1:1" } : vsock; } };
    return Deno.createHttpClient(options as never);
  },
};
export default async (input: { attempt: string }) => {
  const client = await attempts[input.attempt]() as Deno.HttpClient;
  // Reached only when no refusal came: where the request went says what the client was.
  try {
    await fetch("http://example.com/", { client });
    return "sent";
  } catch (e) {
    return "created: " + String((e as Error).cause ?? e);
  } finally {
    client.close();
  }
};
`;

Deno.test("a vsock proxy for Deno.createHttpClient is refused in a tool granted net", async () => {
  const dir = new ToolDir("compozy-unstable-proxy-");
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool("proxy", PROXY_TOOL);
    const run = (attempt: string) =>
      runner.run(call(tool, { attempt }, { timeoutMs: 30_000, permissions: { net: true } }));
    for (const attempt of ["proxy", "proxyFunction"]) {
      const result = await run(attempt);
      // Before: ok, "created: ... Connection reset by peer" (the VM host's vsock answered).
      assert.ok(!result.ok, `${attempt}: ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_permission_denied", result.failure.message);
      assert.equal(result.failure.retryable, false);
      assert.ok(
        result.failure.message.includes('Deno.createHttpClient({ proxy: { transport: "vsock" } })'),
        result.failure.message,
      );
    }
    const kept = await run("optionsKept");
    assert.ok(!kept.ok, JSON.stringify(kept));
    assert.match(kept.failure.message, /either `http1` or `http2` needs to be set to true/);
    for (const attempt of ["proxyTurncoat", "optionsTurncoat"]) {
      const turncoat = await run(attempt);
      assert.ok(turncoat.ok, `${attempt}: ${JSON.stringify(turncoat)}`);
      assert.match(String(turncoat.output), /Connection refused/, attempt);
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

/**
 * A `script` MCP server is a `deno run` of its own, where none of the tool worker's refusals ran: its
 * `Deno.connect({ transport: "vsock" })` ended the server's process with exit 70 (an agent call's start
 * then fails `agent_mcp_unavailable`, retryable, to the same end), and with `net: true` a vsock proxy reached
 * the VM host. Its prelude refuses them as the worker does; the server lives on and answers.
 */
Deno.test("vsock is refused in a script MCP server too, and the server lives on", async () => {
  const { scriptCommand } = await import("../../pkg/runtime/mcp/mcp_transport.ts");
  const root = await Deno.makeTempDir({ prefix: "compozy-unstable-mcp-" });
  try {
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: mcp\n");
    const script = join(root, "server.ts");
    await Deno.writeTextFile(
      script,
      `const out: Record<string, string> = {};
       const vsock = { transport: "vsock", cid: 2, port: 1 };
       const attempts: Record<string, () => unknown> = {
         connect: () => Deno.connect(vsock as never),
         listen: () => Deno.listen(vsock as never),
         serve: () => Deno.serve({ cid: 2, port: 1, onListen() {} } as never, () => new Response()),
         proxy: () => Deno.createHttpClient({ proxy: vsock } as never),
  // A function is an object to Deno, which reads the proxy off it (brk33: before, the VM host answered).
  proxyFunction: () => Deno.createHttpClient({ proxy: Object.assign(() => {}, vsock) } as never),
       };
       for (const [name, attempt] of Object.entries(attempts)) {
         try {
           await attempt();
           out[name] = "reached";
         } catch (e) {
           out[name] = (e as Error).name + ": " + (e as Error).message;
         }
       }
       console.log(JSON.stringify(out));`,
    );
    const server = { id: "s", script, timeoutMs: 5_000, cwd: root, permissions: { net: true } };
    const { command, args } = await scriptCommand(server, script);
    const ran = await new Deno.Command(command, { args, cwd: root, stdout: "piped", stderr: "piped" })
      .output();
    // Before: exit code 70 at the first attempt ("Unstable API 'Deno.connect'").
    assert.equal(ran.code, 0, new TextDecoder().decode(ran.stderr));
    const out = JSON.parse(new TextDecoder().decode(ran.stdout)) as Record<string, string>;
    for (
      const [name, api] of [
        ["connect", 'Deno.connect({ transport: "vsock" })'],
        ["listen", 'Deno.listen({ transport: "vsock" })'],
        ["serve", "Deno.serve({ cid })"],
        ["proxy", 'Deno.createHttpClient({ proxy: { transport: "vsock" } })'],
      ]
    ) {
      assert.ok(out[name].startsWith("NotCapable: ") && out[name].includes(api), `${name}: ${out[name]}`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
