/**
 * The fourth red team (an outside review, /work/wt/redteam4/FINDINGS.md), with real sandbox processes: each
 * hole it found in the runtime, as it reproduced it, and what the runtime does now. F1 (the API reached by a
 * `net: true` tool) is in test/e2e/redteam4_api_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, formatDiagnostic, loadProject } from "../../engine/domain/project/mod.ts";
import { AgentFailure } from "../../pkg/runtime/agent/agent_failure.ts";
import { denoCacheDir } from "../../pkg/runtime/deno_cache_dir.ts";
import { configureProtectedRoots } from "../../pkg/runtime/grant_paths.ts";
import { openMcpToolbox } from "../../pkg/runtime/mcp/mcp_toolbox.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, eventually, ToolDir } from "./_helpers.ts";

const SLEEPER = `export default async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
};`;

Deno.test("red team 4 F2: a tool whose calls all hang does not starve another tool of sandboxes", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxProcesses: 4, maxWarmPerKey: 1 });
  try {
    const sleeper = dir.tool("sleeper", SLEEPER);
    const victim = dir.tool("victim", `export default () => "answered";`);
    // A collection of 16 items with max_workers 16: each call awaits a timer, no CPU, no memory, no grant.
    const hog = Array.from({ length: 16 }, () => runner.run(call(sleeper, 60_000, { timeoutMs: 120_000 })));
    assert.ok(
      await eventually(() => runner.stats().busy === 4 && runner.stats().waiting === 12, 60_000),
      `the sleepers hold every process: ${JSON.stringify(runner.stats())}`,
    );
    // Before: the victim waited behind the 12 queued sleepers and failed tool_timeout ("No sandbox ... was
    // ready before the call's time limit").
    const result = await runner.run(call(victim, {}, { timeoutMs: 30_000 }));
    assert.ok(result.ok, `the other tool's call failed: ${JSON.stringify(result)}`);
    assert.equal(result.output, "answered");
    assert.equal(runner.stats().waiting, 12, "the sleepers' calls still wait for their own processes");
    await runner.close();
    for (const outcome of await Promise.all(hog)) assert.ok(!outcome.ok);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 4 F2: waiting calls are served round robin by tool, not oldest first", async () => {
  const dir = new ToolDir();
  // No reserve: every call must wait for the one process.
  const runner = new ToolRunner({ maxProcesses: 1, reserveProcesses: 0 });
  try {
    const a = dir.tool("a", SLEEPER);
    const b = dir.tool("b", SLEEPER);
    const order: string[] = [];
    const run = (name: string, tool: string, ms: number) =>
      runner.run(call(tool, ms, { timeoutMs: 120_000 })).then((r) => {
        assert.ok(r.ok, `${name}: ${JSON.stringify(r)}`);
        order.push(name);
      });
    const first = run("a1", a, 1_000);
    assert.ok(await eventually(() => runner.stats().busy === 1, 60_000));
    const queued = [run("a2", a, 0), run("a3", a, 0), run("a4", a, 0)];
    assert.ok(await eventually(() => runner.stats().waiting === 3));
    const other = run("b", b, 0);
    assert.ok(await eventually(() => runner.stats().waiting === 4));
    await Promise.all([first, ...queued, other]);
    // Before: a2, a3 and a4 (older) went first; now b is the next tool in turn once a1 ends.
    assert.deepEqual(order.slice(0, 2), ["a1", "b"], order.join(", "));
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

/** Reads each path; returns its first bytes or the error's name. */
const READER = `export default async (input: { paths: string[] }) => {
  const out: Record<string, string> = {};
  for (const path of input.paths) {
    try {
      out[path] = (await Deno.readTextFile(path)).slice(0, 40);
    } catch (e) {
      out[path] = (e as Error).name;
    }
  }
  return out;
};`;

/**
 * A server project `S` (its `.env`, its NATS config under `.compozy/`) serving a bundle unpacked, as
 * `start --bundle` and `deploy` do, in `S/.compozy/deployments/<sha256>/` with a compozy.yaml of its own.
 */
async function bundleLayout() {
  const server = await Deno.makeTempDir({ prefix: "compozy-rt4-server-" });
  const deployment = join(server, ".compozy/deployments", "a".repeat(64));
  await Deno.mkdir(join(deployment, "workflows/tools"), { recursive: true });
  await Deno.mkdir(join(server, ".compozy/nats"), { recursive: true });
  await Deno.writeTextFile(join(server, ".env"), "STRIPE_KEY=sk_live_server_secret_999\n");
  await Deno.writeTextFile(join(server, ".compozy/nats/nats-server.conf"), '{"password": "engine-pw"}\n');
  await Deno.writeTextFile(join(server, "public.txt"), "public\n");
  await Deno.writeTextFile(
    join(deployment, "compozy.yaml"),
    "name: shop\nversion: 1.0.0\nworkflows:\n  - source: ./workflows/report.yaml\n",
  );
  const tool = join(deployment, "workflows/tools/reader.ts");
  await Deno.writeTextFile(tool, READER);
  return { server, deployment, tool };
}

Deno.test("red team 4 F3: a bundled tool cannot read the server project's .env or .compozy/", async () => {
  const { server, deployment, tool } = await bundleLayout();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const paths = [
      join(server, ".env"),
      join(server, ".compozy/nats/nats-server.conf"),
      join(deployment, "compozy.yaml"),
      join(server, "public.txt"),
    ];
    const result = await runner.run(
      call(tool, { paths }, { permissions: { read: true }, timeoutMs: 30_000 }),
    );
    assert.ok(result.ok, result.ok ? "" : result.failure.message);
    // Before: ".env" came back as "STRIPE_KEY=sk_live_server_secret_999" and the NATS config as its text.
    assert.deepEqual(result.output, {
      [paths[0]]: "NotCapable",
      [paths[1]]: "NotCapable",
      [paths[2]]: "NotCapable",
      [paths[3]]: "public\n",
    });
    // List entries climbing out of the deployment to the server project's files are refused at start.
    for (const entry of [join(server, ".env"), join(server, ".compozy/nats")]) {
      const climb = await runner.run(
        call(tool, { paths }, { permissions: { read: [entry] }, timeoutMs: 30_000 }),
      );
      assert.ok(!climb.ok, `${entry}: ${JSON.stringify(climb.ok && climb.output)}`);
      assert.equal(climb.failure.code, "tool_permission_denied");
      assert.match(climb.failure.message, /never granted/);
    }
  } finally {
    await runner.close();
    await Deno.remove(server, { recursive: true });
  }
});

Deno.test("red team 4 F3: the roots the stack names are protected for any tool", async () => {
  const dir = new ToolDir();
  const served = await Deno.makeTempDir({ prefix: "compozy-rt4-root-" });
  await Deno.writeTextFile(join(served, ".env"), "SECRET=1\n");
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  configureProtectedRoots([served]);
  try {
    const tool = dir.tool("reader", READER);
    const paths = [join(served, ".env")];
    const result = await runner.run(
      call(tool, { paths }, { permissions: { read: true }, timeoutMs: 30_000 }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.output, { [paths[0]]: "NotCapable" });
  } finally {
    configureProtectedRoots([]);
    await runner.close();
    dir.cleanup();
    await Deno.remove(served, { recursive: true });
  }
});

Deno.test("red team 4 F3: a deployment's read grant reaching the server project is refused before it runs", async () => {
  const { server, deployment } = await bundleLayout();
  try {
    await Deno.writeTextFile(
      join(deployment, "workflows/report.yaml"),
      `id: report
tools:
  - id: env_reader
    execute: ./tools/reader.ts
    permissions: { read: ["../../../../../.env"] }
  - id: nats_reader
    execute: ./tools/reader.ts
    permissions: { read: ["../../../../nats"] }
tasks:
  - { id: a, use: tool(id=env_reader), with: { paths: [] } }
  - { id: b, use: tool(id=nats_reader), with: { paths: [] } }
`,
    );
    const error = await loadProject(deployment, { processEnv: {} }).then(() => undefined, (e) => e);
    assert.ok(error instanceof ConfigError, `the deployment loaded: ${error}`);
    const found = error.diagnostics.map((d) => formatDiagnostic(d, deployment));
    // The tool's tools/ folder is four levels down the server project: the entries name S/.env, S/.compozy/nats.
    for (const line of [5, 8]) {
      const at = new RegExp(`^workflows/report\\.yaml:${line}:\\d+: .*read.*never granted`);
      assert.ok(found.some((d) => at.test(d)), `line ${line}:\n${found.join("\n")}`);
    }
  } finally {
    await Deno.remove(server, { recursive: true });
  }
});

/**
 * A minimal stdio MCP server (JSON-RPC lines, no package) whose `probe` tool reads the files and runs the
 * string evaluation it is asked to, and answers what happened to each.
 */
const MCP_PROBE = `
const attempt = (f: () => unknown) => { try { return String(f()).slice(0, 40); } catch (e) { return (e as Error).name; } };
const enc = new TextEncoder();
const send = (m: unknown) => Deno.stdout.writeSync(enc.encode(JSON.stringify(m) + "\\n"));
let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buf += chunk;
  let i;
  while ((i = buf.indexOf("\\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (!line.trim()) continue;
    const msg = JSON.parse(line);
    if (msg.method === "initialize") {
      send({ jsonrpc: "2.0", id: msg.id, result: { protocolVersion: msg.params.protocolVersion,
        capabilities: { tools: {} }, serverInfo: { name: "probe", version: "1" } } });
    } else if (msg.method === "tools/list") {
      send({ jsonrpc: "2.0", id: msg.id, result: { tools: [{ name: "probe", description: "probe",
        inputSchema: { type: "object", properties: {} } }] } });
    } else if (msg.method === "tools/call") {
      const out: Record<string, string> = {};
      for (const path of msg.params.arguments.paths) out[path] = attempt(() => Deno.readTextFileSync(path));
      out.eval = attempt(() => new Function("return 6 * 7")());
      send({ jsonrpc: "2.0", id: msg.id, result: { content: [{ type: "text", text: JSON.stringify(out) }] } });
    } else if (msg.id !== undefined) {
      send({ jsonrpc: "2.0", id: msg.id, result: {} });
    }
  }
}
`;

/** A project with a `.env`, a NATS config under `.compozy/` and an MCP script under `mcp/`. */
async function mcpProject() {
  const root = await Deno.makeTempDir({ prefix: "compozy-rt4-mcp-" });
  await Deno.mkdir(join(root, "mcp"));
  await Deno.mkdir(join(root, ".compozy/nats"), { recursive: true });
  await Deno.writeTextFile(join(root, "compozy.yaml"), "name: rt4\nversion: 0.1.0\n");
  await Deno.writeTextFile(join(root, ".env"), "VICTIM_SECRET=victim-secret-value-12345\n");
  await Deno.writeTextFile(join(root, ".compozy/nats/nats-server.conf"), '{"password": "engine-pw"}\n');
  await Deno.writeTextFile(join(root, "public.txt"), "public\n");
  await Deno.writeTextFile(join(root, "mcp/probe.ts"), MCP_PROBE);
  return root;
}

Deno.test({
  name: "red team 4 F4: an MCP script server gets the tool sandbox's protections",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const root = await mcpProject();
    const server = (permissions: Record<string, unknown>) => ({
      id: "probe",
      script: join(root, "mcp/probe.ts"),
      permissions,
      cwd: root,
      timeoutMs: 30_000,
    });
    try {
      const box = await openMcpToolbox([server({ read: true })], { maxOutputBytes: 100_000 });
      try {
        const paths = [
          join(root, ".env"),
          join(root, ".compozy/nats/nats-server.conf"),
          join(root, "public.txt"),
        ];
        const out = JSON.parse(String(await box.call("probe", { paths })));
        // Before: the .env line and the NATS passwords came back, and the string was evaluated (42).
        assert.deepEqual(out, {
          [paths[0]]: "NotCapable",
          [paths[1]]: "NotCapable",
          [paths[2]]: "public\n",
          eval: "EvalError",
        });
      } finally {
        await box.close();
      }
      // A list entry covering the project's protected files (relative entries start at compozy.yaml's folder).
      const refused = await openMcpToolbox([server({ read: ["."] })], { maxOutputBytes: 100_000 })
        .then((b) => (b.close(), undefined), (e) => e);
      assert.ok(refused instanceof AgentFailure, `the server started: ${refused}`);
      assert.equal(refused.code, "agent_mcp_invalid");
      assert.match(refused.message, /never granted/);
      // A write grant covering the script itself: code written there would run at the next start.
      const rewrite = await openMcpToolbox([server({ write: ["./mcp"] })], { maxOutputBytes: 100_000 })
        .then((b) => (b.close(), undefined), (e) => e);
      assert.ok(rewrite instanceof AgentFailure, `the server started: ${rewrite}`);
      assert.match(rewrite.message, /module the sandbox loads/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("red team 4 F4: compozy validate checks mcp[].permissions at the grant's line", async () => {
  const root = await mcpProject();
  try {
    await Deno.writeTextFile(
      join(root, "compozy.yaml"),
      `name: rt4
version: 0.1.0
mcp:
  - id: reader
    script: ./mcp/probe.ts
    permissions: { read: ["."] }
  - id: writer
    script: ./mcp/probe.ts
    permissions: { write: ["./mcp"] }
`,
    );
    const error = await loadProject(root, { processEnv: {} }).then(() => undefined, (e) => e);
    assert.ok(error instanceof ConfigError, `the project loaded: ${error}`);
    const found = error.diagnostics.map((d) => formatDiagnostic(d, root));
    assert.ok(
      found.some((d) => /^compozy\.yaml:6:\d+: mcp\[0\]\.permissions\.read\[0\]: .*never granted/.test(d)),
      found.join("\n"),
    );
    assert.ok(
      found.some((d) =>
        /^compozy\.yaml:9:\d+: mcp\[1\]\.permissions\.write\[0\]: .*covers the MCP script server module/.test(
          d,
        )
      ),
      found.join("\n"),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("red team 4 F6: a write grant covering a workflow YAML file is refused at validate time", async () => {
  const root = await Deno.makeTempDir({ prefix: "compozy-rt4-yaml-" });
  try {
    await Deno.mkdir(join(root, "workflows"));
    await Deno.mkdir(join(root, "tools"));
    await Deno.writeTextFile(join(root, "tools/writer.ts"), "export default () => 1;\n");
    await Deno.writeTextFile(
      join(root, "compozy.yaml"),
      "name: rt4\nversion: 0.1.0\nworkflows:\n  - source: ./workflows/wf.yaml\n",
    );
    await Deno.writeTextFile(
      join(root, "workflows/wf.yaml"),
      `id: wf
tools:
  - id: writer
    execute: ../tools/writer.ts
    permissions: { write: ["../workflows"] }
tasks:
  - { id: run, use: tool(id=writer), with: {} }
`,
    );
    const error = await loadProject(root, { processEnv: {} }).then(() => undefined, (e) => e);
    // Before: the project loaded, and the tool could rewrite its own permissions and env in wf.yaml.
    assert.ok(error instanceof ConfigError, `the project loaded: ${error}`);
    const found = error.diagnostics.map((d) => formatDiagnostic(d, root));
    assert.ok(
      found.some((d) =>
        /^workflows\/wf\.yaml:5:\d+: .*write\[0\]: .*covers the project file .*wf\.yaml/.test(d)
      ),
      found.join("\n"),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("red team 4 F6: no write grant reaches Deno's cache of the sandbox's own modules", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const denoDir = await denoCacheDir();
    const target = join(denoDir, "gen", `rt4-probe-${crypto.randomUUID()}.js`);
    const tool = dir.tool(
      "cache_writer",
      `export default (input: { path: string }) => {
         try { Deno.writeTextFileSync(input.path, "poison"); return "written"; }
         catch (e) { return (e as Error).name; }
       };`,
    );
    // A true grant: before, the file was written into the cache every sandbox loads from.
    const wide = await runner.run(
      call(tool, { path: target }, { permissions: { write: true }, timeoutMs: 30_000 }),
    );
    assert.ok(wide.ok, JSON.stringify(wide));
    assert.equal(wide.output, "NotCapable");
    // A list entry inside the cache is refused at start.
    const narrow = await runner.run(
      call(tool, { path: target }, { permissions: { write: [join(denoDir, "gen")] }, timeoutMs: 30_000 }),
    );
    assert.ok(!narrow.ok, JSON.stringify(narrow));
    assert.equal(narrow.failure.code, "tool_permission_denied");
    assert.match(narrow.failure.message, /Deno's cache/);
    await Deno.remove(target).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("red team 4 F5: raw writes to fd 1 during a call are bounded, not drained forever", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    // No grants: 32 MiB straight to the frame channel (before: read and dropped by the runtime, and the call
    // succeeded; the red team wrote 3 GB in 15 s).
    const tool = dir.tool(
      "flood",
      `import fs from "node:fs";
       export default () => {
         const chunk = new TextEncoder().encode("x".repeat(1024 * 1024));
         let n = 0;
         for (let i = 0; i < 32; i++) n += fs.writeSync(1, chunk);
         return n;
       };`,
    );
    const result = await runner.run(call(tool, {}, { timeoutMs: 60_000 }));
    assert.ok(!result.ok, `the flood succeeded: ${JSON.stringify(result)}`);
    assert.equal(result.failure.code, "tool_crashed");
    assert.match(result.failure.message, /outside frames/);
    // The tool's next call gets a fresh process and is served.
    const quiet = dir.tool("quiet", `export default () => "fine";`);
    const next = await runner.run(call(quiet, {}, { timeoutMs: 30_000 }));
    assert.ok(next.ok && next.output === "fine", JSON.stringify(next));
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
