/**
 * Red team 4 F1 (/work/wt/redteam4/FINDINGS.md), against a real `compozy dev`: a tool granted `net: true`
 * found the API port on loopback and deployed a project of its own making through the unauthenticated dev
 * deploy route (an MCP `command:` server then ran a shell as the runtime's user). Now the API port is in
 * every sandbox's deny list, deployments need an API key even in dev, and a server without a key on
 * loopback answers loopback `Host` names only (DNS rebinding).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FIXTURE_PROJECT, runCli, startDev } from "./support/dev_server.ts";

/** Raw TCP to each host:port, then an HTTP request, as the red team's scanner did. */
const PROBE_TOOL = `
export default async function (input: { targets: [string, number][] }) {
  const results: Record<string, string> = {};
  for (const [hostname, port] of input.targets) {
    const key = hostname + " " + port;
    try {
      const conn = await Deno.connect({ hostname, port });
      await conn.write(new TextEncoder().encode("GET /api/version HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n"));
      const buf = new Uint8Array(64);
      const n = await conn.read(buf);
      conn.close();
      results[key] = "connected: " + new TextDecoder().decode(buf.subarray(0, n ?? 0));
    } catch (e) {
      results[key] = (e as Error).name;
    }
  }
  return results;
}
`;

const PROBE_WORKFLOW = `id: probe
config:
  input: { type: object }
tools:
  - id: probe
    execute: ./tools/probe.ts
    permissions: { net: true }
    timeout: 60s
tasks:
  - id: probe
    use: tool(id=probe)
    with: { targets: "{{ .workflow.input.targets }}" }
    final: true
outputs:
  results: "{{ .tasks.probe.output }}"
`;

async function probeProject(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-rt4-" });
  await Deno.mkdir(join(dir, "workflows/tools"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "compozy.yaml"),
    "name: rt4\nversion: 0.1.0\nworkflows:\n  - source: ./workflows/probe.yaml\n",
  );
  await Deno.writeTextFile(join(dir, "workflows/probe.yaml"), PROBE_WORKFLOW);
  await Deno.writeTextFile(join(dir, "workflows/tools/probe.ts"), PROBE_TOOL);
  return dir;
}

/** `GET /api/version` with the given `Host`, over a raw socket; the whole response as text. */
async function rawGet(port: number, host: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(`GET /api/version HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    return new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
  } catch (e) {
    conn.close();
    throw e;
  }
}

Deno.test({
  name: "red team 4 F1: a net: true tool cannot reach the API, and dev takes no deployment without a key",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await probeProject();
    const dev = await startDev({ dir });
    try {
      const port = Number(new URL(dev.url).port);
      await t.step("every spelling of the API's address is refused to a sandbox", async () => {
        const hostAddresses = Deno.networkInterfaces()
          .filter((i) => !i.address.startsWith("fe80"))
          .map((i) => i.address);
        const spellings = ["localhost", "127.0.0.1", "127.1", "127.0.0.2", "0.0.0.0", "0", "::1", "::"];
        const targets = [...spellings, "::ffff:127.0.0.1", "2130706433", ...hostAddresses].map((
          h,
        ) => [h, port]);
        const state = await dev.run("probe", { targets });
        assert.equal(state.status, "SUCCESS", JSON.stringify(state));
        const results = (state.output as { results: Record<string, string> }).results;
        const reached = Object.entries(results).filter(([, outcome]) => outcome !== "NotCapable");
        assert.deepEqual(reached, [], "every spelling is refused by the permission check");
        assert.equal(Object.keys(results).length, new Set(targets.map(([h]) => h)).size);
      });

      await t.step("a deployment without an API key is refused, even in dev on loopback", async () => {
        const res = await dev.fetch("/api/admin/deployments", {
          method: "POST",
          headers: { "content-type": "application/json" },
          // A bundle that loads (on the code before the fix, dev deployed it and answered 200).
          body: JSON.stringify({
            format: "compozy-bundle/1",
            project: "rt4",
            created_at: new Date().toISOString(),
            files: {
              "compozy.yaml": "name: rt4\nversion: 0.2.0\nworkflows:\n  - source: ./workflows/probe.yaml\n",
              "workflows/probe.yaml": PROBE_WORKFLOW,
              "workflows/tools/probe.ts": PROBE_TOOL,
            },
          }),
        });
        const body = await res.json();
        assert.equal(res.status, 403, JSON.stringify(body));
        assert.equal(body.error.code, "deploy_requires_api_key");
      });

      await t.step("a request naming another host (DNS rebinding) is refused", async () => {
        // fetch() sets Host itself: the request is written by hand, as a rebinding browser sends it.
        const evil = await rawGet(port, `evil.example:${port}`);
        assert.match(evil, /^HTTP\/1\.1 403/, evil);
        assert.match(evil, /"host_not_allowed"/);
        assert.match(await rawGet(port, `localhost:${port}`), /^HTTP\/1\.1 200/);
        assert.match(await rawGet(port, `127.0.0.1:${port}`), /^HTTP\/1\.1 200/);
      });
    } finally {
      await dev.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "red team 4 F1: dev started with an API key takes a deployment sent with it, without downtime",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const key = "rt4-dev-key";
    const dev = await startDev({ fixture: FIXTURE_PROJECT, args: ["--api-key", key] });
    try {
      const build = await runCli(["build", "--cwd", dev.dir, "--out", "dist"]);
      assert.equal(build.code, 0, build.stderr);
      const refused = await runCli(["deploy", "--cwd", dev.dir, "--server", dev.url, "--api-key", "wrong"]);
      assert.equal(refused.code, 1, refused.stdout);
      // Without the key or with a wrong one, the CLI says how to give it.
      assert.match(refused.stderr, /--api-key or COMPOZY_API_KEY/);
      const keyless = await runCli(["executions", "list", "--server", dev.url]);
      assert.equal(keyless.code, 1, keyless.stdout);
      assert.match(keyless.stderr, /HTTP 401, unauthorized\)\n.*--api-key or COMPOZY_API_KEY/);
      const deploy = await runCli(["deploy", "--cwd", dev.dir, "--server", dev.url, "--api-key", key]);
      assert.equal(deploy.code, 0, deploy.stderr);
      assert.match(deploy.stdout, /deployed e2e to .*: hello, approval, slow/);
      const state = await dev.run("hello", { name: "Ed" }, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(state.status, "SUCCESS", JSON.stringify(state));
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});
