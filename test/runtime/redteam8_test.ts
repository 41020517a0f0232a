/**
 * Red team 8 (/work/wt/redteam8.findings.md), with real sandbox processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkProject, formatDiagnostic } from "../../engine/domain/project/mod.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call } from "./_helpers.ts";

/** Reads each path; returns its text or the error's name. */
const READER = `export default async (input: { paths: string[] }) => {
  const out: Record<string, string> = {};
  for (const path of input.paths) {
    try {
      out[path] = await Deno.readTextFile(path);
    } catch (e) {
      out[path] = (e as Error).name;
    }
  }
  return out;
};`;

/**
 * A project whose `.env` links to a secrets file elsewhere and whose `.compozy/` store links to a folder on
 * another disk (a common layout), with a reader tool.
 */
async function linkedProject(): Promise<{ root: string; tool: string; secrets: string; store: string }> {
  const root = await Deno.makeTempDir({ prefix: "compozy-rt8-links-" });
  const secrets = await Deno.makeTempDir({ prefix: "compozy-rt8-secrets-" });
  const store = await Deno.makeTempDir({ prefix: "compozy-rt8-store-" });
  await Deno.writeTextFile(join(secrets, "prod.env"), "PROD_DB_PASSWORD=sk-real-target\n");
  await Deno.mkdir(join(store, "nats"));
  await Deno.writeTextFile(join(store, "nats/nats-server.conf"), '{"authorization": {"password": "bus"}}\n');
  await Deno.symlink(join(secrets, "prod.env"), join(root, ".env"));
  await Deno.symlink(store, join(root, ".compozy"));
  await Deno.mkdir(join(root, "tools"));
  await Deno.writeTextFile(join(root, "compozy.yaml"), "name: links\nworkflows:\n  - source: ./wf.yaml\n");
  const tool = join(root, "tools/rd.ts");
  await Deno.writeTextFile(tool, READER);
  return { root, tool, secrets, store };
}

async function removeAll(...dirs: string[]): Promise<void> {
  for (const dir of dirs) await Deno.remove(dir, { recursive: true });
}

Deno.test("red team 8 S2: a .env or .compozy that is a symlink is protected under its target's path too", async (t) => {
  const { root, tool, secrets, store } = await linkedProject();
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    await t.step("read: true reads neither target", async () => {
      const paths = [
        join(root, ".env"),
        join(secrets, "prod.env"),
        join(store, "nats/nats-server.conf"),
        join(root, "compozy.yaml"),
      ];
      const result = await runner.run(
        call(tool, { paths }, { permissions: { read: true }, timeoutMs: 60_000 }),
      );
      assert.ok(result.ok, result.ok ? "" : result.failure.message);
      // Before: the targets came back with the secret and the bus password.
      assert.deepEqual(result.output, Object.fromEntries(paths.map((path) => [path, "NotCapable"])));
    });

    await t.step("a list entry naming a target's folder is refused at start", async () => {
      for (const entry of [secrets, join(store, "nats")]) {
        const result = await runner.run(
          call(tool, { paths: [] }, { permissions: { read: [entry] }, timeoutMs: 60_000 }),
        );
        assert.ok(!result.ok, `${entry}: granted`);
        assert.equal(result.failure.code, "tool_permission_denied");
        assert.match(result.failure.message, /never granted/);
      }
    });

    await t.step("compozy validate refuses it at the entry's line", async () => {
      await Deno.writeTextFile(
        join(root, "wf.yaml"),
        `id: wf
tools:
  - id: rd
    execute: ./tools/rd.ts
    permissions: { read: [${JSON.stringify(secrets)}] }
tasks:
  - { id: a, use: tool(id=rd), with: { paths: [] } }
`,
      );
      const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
      assert.ok(found.some((d) => /^wf\.yaml:5:\d+: .*read.*never granted/.test(d)), found.join("\n"));
    });
  } finally {
    await runner.close();
    await removeAll(root, secrets, store);
  }
});

Deno.test("red team 8 S4: an MCP script server's static graph reads no protected file and compiles no string", async (t) => {
  const { scriptCommand } = await import("../../pkg/runtime/mcp/mcp_transport.ts");
  const root = await Deno.makeTempDir({ prefix: "compozy-rt8-mcp-" });
  try {
    await Deno.mkdir(join(root, "mcp"));
    await Deno.mkdir(join(root, ".compozy/nats"), { recursive: true });
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: mcp\n");
    await Deno.writeTextFile(join(root, ".env"), "OPENAI_API_KEY=sk-project-dotenv\n");
    await Deno.writeTextFile(join(root, ".compozy/nats/auth.json"), '{"password": "bus"}\n');
    await Deno.writeTextFile(join(root, "mcp/lib.ts"), "export const answer = 42;\n");
    await Deno.writeTextFile(join(root, "mcp/data.json"), '{"ok": true}\n');
    const server = (name: string, source: string) => {
      const script = join(root, "mcp", `${name}.ts`);
      Deno.writeTextFileSync(script, source);
      return { server: { id: name, script, timeoutMs: 5_000, cwd: root }, script };
    };
    const run = async (name: string, source: string) => {
      const { server: s, script } = server(name, source);
      return await scriptCommand(s, script);
    };

    await t.step(
      "text imports of .env, a JSON import under .compozy/ and a computed data: import are refused",
      async () => {
        const attacks: Record<string, string> = {
          env_text: `import t from "../.env" with { type: "text" };\nconsole.log(t);\n`,
          env_bytes: `import b from "../.env" with { type: "bytes" };\nconsole.log(b.length);\n`,
          store_json: `import j from "../.compozy/nats/auth.json" with { type: "json" };\nconsole.log(j);\n`,
          data_code:
            `const m = await import("data:text/javascript," + encodeURIComponent("export default 6*7"));\n` +
            `console.log(m.default);\n`,
        };
        for (const [name, source] of Object.entries(attacks)) {
          // Before: the command was given, and its process printed the secret (or 42).
          await assert.rejects(run(name, source), { code: "tool_import_refused" }, name);
        }
      },
    );

    await t.step("a script importing its own modules and JSON runs, in a real process", async () => {
      const { command, args } = await run(
        "fine",
        `import { answer } from "./lib.ts";\nimport data from "./data.json" with { type: "json" };\n` +
          `console.log(JSON.stringify({ answer, data }));\n`,
      );
      const out = await new Deno.Command(command, { args, cwd: root, stdout: "piped", stderr: "piped" })
        .output();
      assert.equal(new TextDecoder().decode(out.stdout).trim(), '{"answer":42,"data":{"ok":true}}');
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("red team 8 S4: compozy validate refuses an MCP script's text import of .env at its script field", async () => {
  const root = await Deno.makeTempDir({ prefix: "compozy-rt8-mcp-validate-" });
  try {
    await Deno.mkdir(join(root, "mcp"));
    await Deno.writeTextFile(join(root, ".env"), "OPENAI_API_KEY=sk-project-dotenv\n");
    await Deno.writeTextFile(
      join(root, "mcp/orders.ts"),
      `import t from "../.env" with { type: "text" };\nconsole.log(t);\n`,
    );
    await Deno.writeTextFile(
      join(root, "compozy.yaml"),
      "name: mcp\nmcp:\n  - id: orders\n    script: ./mcp/orders.ts\n",
    );
    const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
    // Before: "project is valid".
    assert.ok(
      found.some((d) =>
        /^compozy\.yaml:4:\d+: mcp\[0\]\.script: tool_import_refused: .*"text" is refused/.test(d)
      ),
      found.join("\n"),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("red team 8 S5: a proxy variable is never granted, and env: true cannot set one", async (t) => {
  // A local service stands for one on the host, the LAN or a cloud metadata address.
  let reached = 0;
  const service = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    reached++;
    return new Response("inside");
  });
  const dir = await Deno.makeTempDir({ prefix: "compozy-rt8-proxy-" });
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = join(dir, "prox.ts");
    await Deno.writeTextFile(
      tool,
      `export default async (input: { proxy: string }) => {
         try {
           Deno.env.set("HTTP_PROXY", input.proxy);
         } catch (e) {
           return "set: " + (e as Error).name;
         }
         const client = Deno.createHttpClient({});
         const r = await fetch("http://example.com/anything", { client });
         return "fetched: " + r.status + " " + (await r.text());
       };`,
    );
    const proxy = `http://127.0.0.1:${service.addr.port}`;

    await t.step("a list naming HTTP_PROXY (any case) is refused", async () => {
      for (const name of ["HTTP_PROXY", "https_proxy", "ALL_PROXY", "No_Proxy"]) {
        const result = await runner.run(
          call(tool, { proxy }, { permissions: { net: ["example.com"], env: [name] }, timeoutMs: 60_000 }),
        );
        // Before: granted; the tool set the variable and its request went to the local service.
        assert.ok(!result.ok, `${name}: ${JSON.stringify(result.ok && result.output)}`);
        assert.equal(result.failure.code, "tool_permission_denied", name);
      }
    });

    await t.step("env: true cannot set the resolver's or the loader's variables either", async () => {
      // glibc reads HOSTALIASES at each look-up: with a file of its own, a single-label grant (`redis`) went to
      // any host (outside break attempt brk-sbx3, left open there). Before: every name was set.
      const probe = join(dir, "names.ts");
      await Deno.writeTextFile(
        probe,
        `export default () => ["HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN", "LD_PRELOAD", "DENO_CERT", "OTEL_X"]
           .map((n) => { try { Deno.env.set(n, "x"); return n + ": set"; } catch (e) { return n + ": " + (e as Error).name; } });`,
      );
      const result = await runner.run(call(probe, {}, { permissions: { env: true }, timeoutMs: 60_000 }));
      assert.ok(result.ok, JSON.stringify(result));
      for (const line of result.output as string[]) assert.match(line, /: NotCapable$/);
    });

    await t.step("env: true cannot set it", async () => {
      const result = await runner.run(
        call(tool, { proxy }, { permissions: { net: ["example.com"], env: true }, timeoutMs: 60_000 }),
      );
      assert.ok(result.ok, JSON.stringify(result));
      assert.equal(result.output, "set: NotCapable");
    });
    assert.equal(reached, 0);
  } finally {
    await runner.close();
    await service.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("red team 8 S6: no grant reads the controlling terminal (/dev/tty)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-rt8-tty-" });
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = join(dir, "tty.ts");
    await Deno.writeTextFile(
      tool,
      `export default () => {
         try {
           Deno.openSync("/dev/tty", { read: true }).close();
           return "opened";
         } catch (e) {
           return (e as Error).name;
         }
       };`,
    );
    // Before: opened on a terminal (compozy dev's: the operator's keystrokes), ENXIO without one.
    const all = await runner.run(call(tool, {}, { permissions: { read: true }, timeoutMs: 60_000 }));
    assert.ok(all.ok, JSON.stringify(all));
    assert.equal(all.output, "NotCapable");
    const listed = await runner.run(call(tool, {}, { permissions: { read: ["/dev"] }, timeoutMs: 60_000 }));
    assert.ok(!listed.ok, JSON.stringify(listed));
    assert.equal(listed.failure.code, "tool_permission_denied");
    assert.match(listed.failure.message, /covers \/dev\/tty/);
  } finally {
    await runner.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("red team 8 S7: a net: true tool cannot listen on the port of a local model or MCP endpoint", async () => {
  const { localUpstreams } = await import("../../cli/upstream_ports.ts");
  const { loadProject } = await import("../../engine/domain/project/mod.ts");
  const { configureNetDeny, parseNetTargets } = await import("../../pkg/runtime/net_deny.ts");
  const root = await Deno.makeTempDir({ prefix: "compozy-rt8-upstreams-" });
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  // Two free ports: a local model endpoint and a local MCP server, both down.
  const free = () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return port;
  };
  const [modelPort, mcpPort] = [free(), free()];
  try {
    await Deno.mkdir(join(root, "tools"));
    await Deno.writeTextFile(join(root, ".env"), `LLM_URL=http://localhost:${modelPort}\n`);
    await Deno.writeTextFile(
      join(root, "compozy.yaml"),
      `name: up
workflows:
  - source: ./wf.yaml
models:
  - { id: local, provider: openai-compatible, model: llama3, base_url: "{{ .env.LLM_URL }}/v1" }
  - { id: remote, provider: openai-compatible, model: x, base_url: "https://api.example.com:8443/v1" }
mcp:
  - { id: docs, url: "http://127.0.0.1:${mcpPort}/mcp" }
`,
    );
    await Deno.writeTextFile(
      join(root, "wf.yaml"),
      "id: wf\ntools:\n  - { id: squat, execute: ./tools/squat.ts, permissions: { net: true } }\n" +
        "tasks:\n  - { id: a, use: tool(id=squat) }\n",
    );
    const tool = join(root, "tools/squat.ts");
    await Deno.writeTextFile(
      tool,
      `export default (input: { ports: number[] }) => input.ports.map((port) => {
         try {
           Deno.listen({ hostname: "127.0.0.1", port }).close();
           return "listened";
         } catch (e) {
           return (e as Error).name;
         }
       });`,
    );
    const project = await loadProject(root, { processEnv: {} });
    const upstreams = localUpstreams(project, () => undefined);
    // The remote endpoint is not denied: a sandbox cannot listen on another host's address.
    assert.deepEqual(upstreams, [`127.0.0.1:${mcpPort}`, `localhost:${modelPort}`]);
    await configureNetDeny(parseNetTargets(upstreams.join(",")));
    const result = await runner.run(
      call(tool, { ports: [modelPort, mcpPort] }, { permissions: { net: true }, timeoutMs: 60_000 }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    // Before: both listened, and the model's requests (with its key) and the MCP calls came to the tool.
    assert.deepEqual(result.output, ["NotCapable", "NotCapable"]);
  } finally {
    await configureNetDeny([]);
    await runner.close();
    await Deno.remove(root, { recursive: true });
  }
});

/**
 * Writes `code` as an MCP script server (`server.ts`) in a project of its own, runs it as the runtime starts
 * one, and gives what it printed as JSON; `then` runs before the project is removed.
 */
async function runScriptServer(
  prefix: string,
  code: string,
  then?: (server: { id: string; script: string; timeoutMs: number; cwd: string }) => Promise<void>,
): Promise<Record<string, string>> {
  const { scriptCommand } = await import("../../pkg/runtime/mcp/mcp_transport.ts");
  const root = await Deno.makeTempDir({ prefix });
  try {
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: mcp\n");
    const script = join(root, "server.ts");
    const server = { id: "s", script, timeoutMs: 5_000, cwd: root };
    await Deno.writeTextFile(script, code);
    const { command, args } = await scriptCommand(server, script);
    const ran = await new Deno.Command(command, { args, cwd: root, stdout: "piped", stderr: "piped" })
      .output();
    const out = JSON.parse(new TextDecoder().decode(ran.stdout));
    await then?.(server);
    return out;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("red team 8 S9: a script server compiles no string through a Worker or node:vm", async () => {
  const { scriptCommand } = await import("../../pkg/runtime/mcp/mcp_transport.ts");
  const out = await runScriptServer(
    "compozy-rt8-mcp-worker-",
    `const code = "self.postMessage(String(6*7))";
     const out: Record<string, string> = {};
     try {
       const w = new Worker("data:text/javascript," + encodeURIComponent(code), { type: "module" });
       out.worker = await new Promise<string>((r) => (w.onmessage = (e) => (w.terminate(), r(String(e.data)))));
     } catch (e) {
       out.worker = (e as Error).name;
     }
     try {
       const vm = process.getBuiltinModule("node:vm") as { runInThisContext(s: string): unknown };
       out.vm = String(vm.runInThisContext("6*7"));
     } catch (e) {
       out.vm = (e as Error).message;
     }
     console.log(JSON.stringify(out));`,
    async (server) => {
      await Deno.writeTextFile(
        server.script,
        `import vm from "node:vm";\nconsole.log(vm.runInThisContext("1"));\n`,
      );
      await assert.rejects(scriptCommand(server, server.script), { code: "tool_import_refused" });
    },
  );
  // Before: {"worker": "42", "vm": "42"}.
  assert.equal(out.worker, "ReferenceError");
  assert.match(out.vm, /node:vm is refused in a script server/);
});

Deno.test("break G2, G3: a script server compiles no string through Deno's internals, has no WebGPU", async () => {
  // The built code imports a computed data: module, which the script check refuses in the script's own code.
  const out = await runScriptServer(
    "compozy-g2-mcp-internals-",
    `const out: Record<string, string> = {};
     try {
       const internals = (Deno as any)[(Deno as any).internal];
       const code = "import('data:text/javascript,export default ' + String(6 * 7))";
       const [built] = internals.core.evalContext(code, "file:///built.js");
       out.built = String((await built).default);
     } catch (e) {
       out.built = (e as Error).name;
     }
     out.gpu = String((navigator as { gpu?: unknown }).gpu);
     console.log(JSON.stringify(out));`,
  );
  // Before: {"built": "42", "gpu": "[object GPU]"} (G3: WebGPU loads native code named by env variables).
  assert.equal(out.built, "TypeError");
  assert.equal(out.gpu, "undefined");
});

Deno.test("red team 8 S11: no write grant reaches the deno executables or the runtime's own code", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-rt8-code-" });
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  const checkout = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
  const probe = join(checkout, "pkg/runtime/mcp/.rt8_s11_probe");
  try {
    const tool = join(dir, "w.ts");
    await Deno.writeTextFile(
      tool,
      `export default (input: { path: string }) => {
         try {
           Deno.writeTextFileSync(input.path, "ran as the runtime");
           return "written";
         } catch (e) {
           return (e as Error).name;
         }
       };`,
    );
    const { dirname } = await import("node:path");
    for (
      const entry of [dirname(Deno.execPath()), join(checkout, "pkg/runtime/mcp"), join(checkout, "engine")]
    ) {
      const result = await runner.run(
        call(tool, { path: probe }, { permissions: { write: [entry] }, timeoutMs: 60_000 }),
      );
      // Before: granted (the checkout's module then ran the appended code in the runtime, with -A).
      assert.ok(!result.ok, `${entry}: ${JSON.stringify(result)}`);
      assert.equal(result.failure.code, "tool_permission_denied", entry);
    }
    const all = await runner.run(
      call(tool, { path: probe }, { permissions: { write: true }, timeoutMs: 60_000 }),
    );
    assert.ok(all.ok, JSON.stringify(all));
    assert.equal(all.output, "NotCapable");
  } finally {
    await runner.close();
    await Deno.remove(probe).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("red team 8 S12: a linked .compozy is protected under the real root's spelling too", async () => {
  const { root, tool, secrets, store } = await linkedProject();
  const link = `${root}-link`;
  await Deno.symlink(root, link);
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const conf = "nats/nats-server.conf";
    const paths = [join(store, conf), join(link, ".compozy", conf), join(root, ".compozy", conf)];
    // The tool is reached through the link, as `compozy dev --cwd <link>` reaches it.
    const result = await runner.run(
      call(tool.replace(root, link), { paths }, { permissions: { read: true }, timeoutMs: 60_000 }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    // Before: the real root's spelling of .compozy read the bus password.
    assert.deepEqual(result.output, Object.fromEntries(paths.map((path) => [path, "NotCapable"])));
  } finally {
    await runner.close();
    await Deno.remove(link);
    await removeAll(root, secrets, store);
  }
});

Deno.test("issue 10 leftover: a .env* file created after a read: true sandbox started is denied to its next call", async () => {
  const root = await Deno.makeTempDir({ prefix: "compozy-env-late-" });
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: late\n");
    await Deno.mkdir(join(root, "tools"));
    const tool = join(root, "tools/rd.ts");
    await Deno.writeTextFile(tool, READER);
    const late = join(root, ".env.late");
    const read = () =>
      runner.run(call(tool, { paths: [late] }, { permissions: { read: true }, timeoutMs: 60_000 }));
    const warm = await read();
    assert.ok(warm.ok, JSON.stringify(warm));
    assert.deepEqual(warm.output, { [late]: "NotFound" });
    await Deno.writeTextFile(late, "OPENAI_API_KEY=sk-late\n");
    // Before: the warm process, started before the file existed, read it.
    const next = await read();
    assert.ok(next.ok, JSON.stringify(next));
    assert.deepEqual(next.output, { [late]: "NotCapable" });
    assert.equal(runner.stats().spawned, 2);
  } finally {
    await runner.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("issue 10 leftover, review: every warm process a burst left idle is checked, not only the first three", async () => {
  const root = await Deno.makeTempDir({ prefix: "compozy-env-late-burst-" });
  // Five processes of one tool stay idle after a burst of five calls (the surplus lives 60 s here).
  const runner = new ToolRunner({
    maxWarmPerKey: 1,
    surplusIdleMs: 60_000,
    maxProcesses: 8,
    startTimeoutMs: 60_000,
  });
  try {
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: late\n");
    await Deno.mkdir(join(root, "tools"));
    const tool = join(root, "tools/rd.ts");
    // The reader, holding each call of the burst long enough for the pool to start a process per call.
    await Deno.writeTextFile(
      tool,
      READER.replace(
        "{ paths: string[] }) => {",
        "{ paths: string[]; holdMs?: number }) => {\n" +
          "  await new Promise((r) => setTimeout(r, input.holdMs ?? 0));",
      ),
    );
    const late = join(root, ".env.late");
    const read = (holdMs = 0) =>
      runner.run(call(tool, { paths: [late], holdMs }, { permissions: { read: true }, timeoutMs: 60_000 }));
    const burst = await Promise.all([read(3_000), read(3_000), read(3_000), read(3_000), read(3_000)]);
    assert.ok(burst.every((r) => r.ok), JSON.stringify(burst));
    const idle = runner.stats().idle;
    assert.ok(idle >= 4, `a burst left ${idle} idle processes`);
    await Deno.writeTextFile(late, "OPENAI_API_KEY=sk-late\n");
    // Before: three stale processes were retired and the fourth, as stale, ran the call and read the file.
    const next = await read();
    assert.ok(next.ok, JSON.stringify(next));
    assert.deepEqual(next.output, { [late]: "NotCapable" });
  } finally {
    await runner.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("red team 8 S11: compozy validate refuses a write grant on the deno executable's folder or the runtime's code", async () => {
  const root = await Deno.makeTempDir({ prefix: "compozy-rt8-code-validate-" });
  const checkout = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
  try {
    await Deno.mkdir(join(root, "tools"));
    await Deno.writeTextFile(join(root, "tools/w.ts"), "export default () => 1;\n");
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: code\nworkflows:\n  - source: ./wf.yaml\n");
    const { dirname } = await import("node:path");
    await Deno.writeTextFile(
      join(root, "wf.yaml"),
      `id: wf
tools:
  - id: w
    execute: ./tools/w.ts
    permissions: { write: [${JSON.stringify(dirname(Deno.execPath()))}, ${
        JSON.stringify(join(checkout, "engine"))
      }] }
tasks:
  - { id: a, use: tool(id=w) }
`,
    );
    const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
    assert.ok(found.some((d) => /write\[0\]: .*the deno that runs/.test(d)), found.join("\n"));
    assert.ok(found.some((d) => /write\[1\]: .*the runtime's own code/.test(d)), found.join("\n"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("review R-S4/R-S1: Deno's telemetry and TLS key log variables are never granted", async (t) => {
  // Deno's OpenTelemetry exporter posts to OTEL_EXPORTER_OTLP_ENDPOINT from a process with no net grant at
  // all (probed: /v1/metrics and /v1/logs reached a local service), and SSLKEYLOGFILE makes its TLS stack
  // write a file no write grant names. Both are read at start, from the process's environment.
  let reached = 0;
  const service = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    reached++;
    await req.body?.cancel();
    return new Response("ok");
  });
  const dir = await Deno.makeTempDir({ prefix: "compozy-rt8-otel-" });
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = join(dir, "otel.ts");
    await Deno.writeTextFile(
      tool,
      `export default async () => {
         console.log("telemetry, if exported");
         await new Promise((r) => setTimeout(r, 600));
         try {
           return Deno.env.get("OTEL_DENO") ?? "unset";
         } catch (e) {
           return (e as Error).name;
         }
       };`,
    );
    const env = {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${service.addr.port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_METRIC_EXPORT_INTERVAL: "100",
      SSLKEYLOGFILE: join(dir, "keys.log"),
    };

    await t.step("a list naming one is refused", async () => {
      for (const name of ["OTEL_DENO", "OTEL_EXPORTER_OTLP_ENDPOINT", "SSLKEYLOGFILE"]) {
        const result = await runner.run(
          call(tool, {}, { permissions: { env: [name] }, env, timeoutMs: 60_000 }),
        );
        // Before: granted, and the process started with the variable set.
        assert.ok(!result.ok, `${name}: ${JSON.stringify(result.ok && result.output)}`);
        assert.equal(result.failure.code, "tool_permission_denied", name);
      }
    });

    await t.step("env: true starts the process without them", async () => {
      const result = await runner.run(call(tool, {}, { permissions: { env: true }, env, timeoutMs: 60_000 }));
      assert.ok(result.ok, JSON.stringify(result));
      // Not in its environment, and denied to it (OTEL_* may be neither read nor set under env: true).
      assert.equal(result.output, "NotCapable");
    });
    assert.equal(reached, 0, "the telemetry exporter reached the local service");
  } finally {
    await runner.close();
    await service.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
