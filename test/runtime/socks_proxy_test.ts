/**
 * A SOCKS proxy took a `net: true` tool to the bus port past the deny list (issue 10, rt33): Deno checks a
 * SOCKS proxy's host as written and its connector resolves it, so `127.1`, `0`, `2130706433` or a name of
 * this machine reached a port denied under every local spelling. Driven through real sandboxes, against a
 * stand-in for the bus that counts the connections it accepts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { call, withDeniedBusPort } from "./_helpers.ts";

const VIA_PROXY = `export default async (input: { proxy: string }) => {
  try {
    const client = Deno.createHttpClient({ proxy: { url: input.proxy } });
    try {
      await fetch("http://example.com/", { client });
    } finally {
      client.close();
    }
    return "fetched";
  } catch (e) {
    return (e as Error).name + ": " + (e as Error).message;
  }
};`;

Deno.test("rt33 S2: a SOCKS proxy does not reach the bus port, under any spelling", async () => {
  await withDeniedBusPort(async ({ port, connections, dir, runner }) => {
    const tool = dir.tool("via_proxy", VIA_PROXY);
    const hosts = ["127.1", "0", "2130706433", "0x7f000001", Deno.hostname(), "127.0.0.1"];
    const urls = hosts.flatMap((host) => [`socks5://${host}:${port}`, `socks5h://${host}:${port}`]);
    // As the URL parser reads them: a tab inside the scheme, upper case, leading controls.
    urls.push(`so\tcks5://127.1:${port}`, `SOCKS5://127.1:${port}`, ` \x01socks5h://0:${port}`);
    for (const proxy of urls) {
      const result = await runner.run(
        call(tool, { proxy }, { permissions: { net: true }, timeoutMs: 30_000 }),
      );
      assert.ok(result.ok, JSON.stringify(result));
      assert.match(String(result.output), /^NotCapable: /, `${proxy}: ${result.output}`);
      assert.equal(connections(), 0, `${proxy} reached the bus port: ${result.output}`);
    }
  });
});

/**
 * A function is an object to Deno, which reads a client's options and a proxy's off one: the refusal checked
 * plain objects only, so a function carrying the proxy, or the options, reached the bus port through a SOCKS
 * proxy (outside break attempt brk33: one connection each, before).
 */
const VIA_FUNCTION = `export default async (input: { proxy: string; carrier: string }) => {
  const proxy = input.carrier === "proxy" ? Object.assign(() => {}, { url: input.proxy }) : { url: input.proxy };
  const options = input.carrier === "options" ? Object.assign(() => {}, { proxy }) : { proxy };
  try {
    const client = Deno.createHttpClient(options as never);
    try {
      await fetch("http://example.com/", { client });
    } finally {
      client.close();
    }
    return "fetched";
  } catch (e) {
    return (e as Error).name + ": " + (e as Error).message;
  }
};`;

Deno.test("brk33: a SOCKS proxy carried by a function, or in function-typed options, is refused too", async () => {
  await withDeniedBusPort(async ({ port, connections, dir, runner }) => {
    const tool = dir.tool("via_function", VIA_FUNCTION);
    for (const carrier of ["proxy", "options"]) {
      const proxy = `socks5://127.1:${port}`;
      const result = await runner.run(
        call(tool, { proxy, carrier }, { permissions: { net: true }, timeoutMs: 30_000 }),
      );
      assert.ok(result.ok, JSON.stringify(result));
      assert.equal(connections(), 0, `a function-typed ${carrier} reached the bus port: ${result.output}`);
      assert.match(String(result.output), /^NotCapable: /, `${carrier}: ${result.output}`);
    }
  });
});

Deno.test("rt33 S2: an http proxy is still checked by Deno, not refused by its scheme", async () => {
  await withDeniedBusPort(async ({ port, connections, dir, runner }) => {
    const tool = dir.tool("via_proxy", VIA_PROXY);
    for (const proxy of [`http://127.1:${port}`, `HTTP://0:${port}`]) {
      const result = await runner.run(
        call(tool, { proxy }, { permissions: { net: true }, timeoutMs: 30_000 }),
      );
      assert.ok(result.ok, JSON.stringify(result));
      assert.match(String(result.output), /^NotCapable: Requires net access/, `${proxy}: ${result.output}`);
    }
    assert.equal(connections(), 0);
  });
});

Deno.test("rt33 S2: a SOCKS proxy is refused in a script MCP server too, whose realm is not frozen", async () => {
  const { scriptCommand } = await import("../../pkg/runtime/mcp/mcp_transport.ts");
  await withDeniedBusPort(async ({ port, connections, dir }) => {
    Deno.writeTextFileSync(join(dir.path, "compozy.yaml"), "name: mcp\n");
    const script = join(dir.path, "server.ts");
    // The script's own code runs after the prelude and may replace what the check could call.
    Deno.writeTextFileSync(
      script,
      `RegExp.prototype.test = () => true;
       String.prototype.replace = function () { return "http://x"; };
       globalThis.String = (() => "http://x") as never;
       const url = "socks5://127.1:${port}";
       // A plain proxy, and one carried by a function (brk33).
       for (const proxy of [{ url }, Object.assign(() => {}, { url })]) {
         try {
           const client = Deno.createHttpClient({ proxy } as never);
           await fetch("http://example.com/", { client });
           console.log("fetched");
         } catch (e) {
           console.log((e as Error).name + ": " + (e as Error).message);
         }
       }`,
    );
    const server = { id: "s", script, timeoutMs: 5_000, cwd: dir.path, permissions: { net: true } };
    const { command, args } = await scriptCommand(server, script);
    const ran = await new Deno.Command(command, { args, cwd: dir.path, stdout: "piped", stderr: "piped" })
      .output();
    const out = new TextDecoder().decode(ran.stdout);
    const lines = out.trim().split("\n");
    assert.equal(lines.length, 2, new TextDecoder().decode(ran.stderr));
    for (const line of lines) assert.match(line, /^NotCapable: /, out);
    assert.equal(connections(), 0, out);
  });
});
