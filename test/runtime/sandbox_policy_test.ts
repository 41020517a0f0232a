/**
 * Issue 10, holes 2, 4 and 6, tried as an attacker would, each against real sandbox processes: every attempt
 * must fail its own call with a named failure code (most before any tool code runs), and the runner goes on
 * serving. The earlier attempts are in sandbox_escape_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ToolResult, ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const RUNTIME_DIR = fileURLToPath(new URL("../../pkg/runtime/", import.meta.url));
const DATA_MODULE = "data:text/javascript,export default 'loaded'";

function code(result: ToolResult): string {
  assert.ok(!result.ok, `expected a failure, got ${JSON.stringify(result)}`);
  return result.failure.code;
}

/** The `--allow-read=` list a sandbox process was started with. */
function allowedReads(pid: number): string[] {
  const args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
  const flag = args.find((a) => a.startsWith("--allow-read"));
  return flag?.startsWith("--allow-read=") ? flag.slice("--allow-read=".length).split(",") : [];
}

Deno.test("hole 2: a tool reads only its module graph", async (t) => {
  // A tool at the root of a project, next to its secrets: the layout of the original report.
  const dir = new ToolDir("compozy-project-");
  const runner = new ToolRunner();
  Deno.writeTextFileSync(join(dir.path, "compozy.yaml"), "name: demo\n");
  Deno.writeTextFileSync(join(dir.path, ".env"), "API_KEY=sk-secret\n");
  Deno.writeTextFileSync(join(dir.path, "service-account.txt"), "private key");
  Deno.mkdirSync(join(dir.path, ".compozy/nats/jetstream/KV_compozy_task_executions/msgs"), {
    recursive: true,
  });
  Deno.writeTextFileSync(
    join(dir.path, ".compozy/nats/jetstream/KV_compozy_task_executions/msgs/1.blk"),
    "x",
  );
  Deno.writeTextFileSync(join(dir.path, ".compozy/state.json"), "{}");
  Deno.writeTextFileSync(join(dir.path, "config.json"), `{ "units": "metric" }`);
  Deno.writeTextFileSync(join(dir.path, "lib.ts"), `export const lib = "lib";`);
  const run = (name: string, source: string, overrides = {}) =>
    runner.run(call(dir.tool(name, source), null, overrides));
  try {
    const refusedImports: Record<string, string> = {
      "a text import of .env": `import s from "./.env" with { type: "text" };\nexport default () => s;`,
      "a bytes import of .env":
        `import s from "./.env" with { type: "bytes" };\nexport default () => s.length;`,
      "a text import of a file next to the tool":
        `import s from "./service-account.txt" with { type: "text" };\nexport default () => s;`,
      "a text import of a JetStream block":
        `import s from "./.compozy/nats/jetstream/KV_compozy_task_executions/msgs/1.blk" with { type: "text" };\nexport default () => s;`,
      "a JSON import from .compozy/":
        `import s from "./.compozy/state.json" with { type: "json" };\nexport default () => s;`,
      "a JSON import of compozy.yaml":
        `import s from "./compozy.yaml" with { type: "json" };\nexport default () => s;`,
      "node:timers, whose timers the sandbox does not track":
        `import { setInterval } from "node:timers";\nexport default () => typeof setInterval;`,
      "node:timers/promises": `import { setTimeout } from "node:timers/promises";\nexport default () => 1;`,
      "a dynamic text import of .env":
        `export default async () => (await import("./.env", { with: { type: "text" } })).default;`,
    };
    for (const [name, source] of Object.entries(refusedImports)) {
      await t.step(`${name} is refused`, async () => {
        assert.equal(code(await run(name.replace(/\W+/g, "_"), source)), "tool_import_refused");
      });
    }

    await t.step("a JSON import of a .json file in the folder works", async () => {
      const result = await run(
        "json_ok",
        `import c from "./config.json" with { type: "json" };\nimport { lib } from "./lib.ts";\nexport default () => [c.units, lib];`,
      );
      assert.deepEqual(result.ok && result.output, ["metric", "lib"]);
    });

    await t.step("the sandbox process may read the graph's files, never the folder", async () => {
      const tool = dir.tool("graph", `import { lib } from "./lib.ts";\nexport default () => lib;`);
      await runner.warm(tool);
      const reads = runner.stats().pids.map(allowedReads).find((r) => r.includes(tool));
      assert.ok(reads, "a sandbox of the tool is running");
      assert.deepEqual(
        // Besides the graph: the runtime's own worker modules and SES's lockdown, never the tool's folder.
        reads.filter((p) => !p.startsWith(RUNTIME_DIR) && !p.includes("/ses/")).sort(),
        [join(dir.path, "graph.ts"), join(dir.path, "lib.ts")].sort(),
      );
      assert.ok(!reads.includes(dir.path));
    });

    await t.step("a grant covering the project's .env is refused before the tool starts", async () => {
      const tool = `export default () => Deno.readTextFile(".env");`;
      assert.equal(
        code(await run("read_dot", tool, { permissions: { read: ["."] } })),
        "tool_permission_denied",
      );
      assert.equal(
        code(await run("write_store", tool, { permissions: { write: [".compozy"] } })),
        "tool_permission_denied",
      );
    });

    await t.step("read: true still cannot read .env, .compozy/ or compozy.yaml", async () => {
      const reader = `export default (p: string) => Deno.readTextFile(p);`;
      const permissions = { read: true };
      for (const file of [".env", ".compozy/state.json", "compozy.yaml"]) {
        const result = await runner.run(
          call(dir.tool("read_all", reader), join(dir.path, file), { permissions }),
        );
        assert.equal(code(result), "tool_permission_denied", file);
      }
      const other = await runner.run(
        call(dir.tool("read_all", reader), join(dir.path, "config.json"), { permissions }),
      );
      assert.ok(other.ok, "other files stay readable");
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("hole 4: the import policy parses the code", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  const spec = `const spec = ${JSON.stringify(DATA_MODULE)};\n`;
  try {
    const refused: Record<string, string> = {
      "a // comment ended by CR": `${spec}export default async () => (await import//x\r(spec)).default;`,
      "a // comment ended by LS": `${spec}export default async () => (await import//x\u2028(spec)).default;`,
      "a // comment ended by PS": `${spec}export default async () => (await import//x\u2029(spec)).default;`,
      "...import(spec)": `${spec}export default async () => ({ ...import(spec) });`,
      "[...import(spec)]": `${spec}export default async () => [...import(spec)];`,
      "f(...import(spec))":
        `${spec}const f = (...a: unknown[]) => a;\nexport default () => f(...import(spec));`,
      "a template literal":
        `const kind = "javascript";\nexport default () => import(\`data:text/\${kind},export default 1\`);`,
      "a unicode-escaped identifier": `${spec}export default () => import(\\u0073pec);`,
      "a unicode-escaped data: literal":
        `export default () => import("\\u0064ata:text/javascript,export default 1");`,
      "import.meta.resolve": `export default () => import(import.meta.resolve("./x.ts"));`,
      "a blob: URL":
        `export default () => import(URL.createObjectURL(new Blob(["export default 1"], { type: "text/javascript" })));`,
      "node:vm built at run time":
        `export default async () => (await import("node:" + "vm")).runInThisContext("1+1");`,
      "node:vm through a spread": `export default () => [...import("node:vm")];`,
      "createRequire from node:module":
        `import { createRequire } from "node:module";\nexport default () => createRequire(import.meta.url)("./x.cjs");`,
      "a CommonJS module with a dynamic require": "import m from './helper.cjs';\nexport default () => m;",
      "a parse error in an imported module": `import { x } from "./broken.ts";\nexport default () => x;`,
    };
    Deno.writeTextFileSync(join(dir.path, "helper.cjs"), "module.exports = require(process.argv[0]);");
    // deno info accepts this file (an unknown phase keyword is left to the runtime); the parser refuses it.
    Deno.writeTextFileSync(
      join(dir.path, "broken.ts"),
      "export const x = 1;\nimport source s from './x.wasm';\n",
    );
    for (const [name, source] of Object.entries(refused)) {
      await t.step(`${name} is refused`, async () => {
        const result = await runner.run(call(dir.tool(`t_${name.replace(/\W+/g, "_")}`, source), null));
        assert.ok(
          ["tool_import_refused", "tool_module_invalid"].includes(code(result)),
          `${name}: ${!result.ok && result.failure.code} ${!result.ok && result.failure.message}`,
        );
        if (name !== "a parse error in an imported module") assert.equal(code(result), "tool_import_refused");
      });
    }

    const threw: Record<string, string> = {
      "new Function": `export default () => new Function("return 1")();`,
      'globalThis["ev" + "al"]': `export default () => (globalThis as any)["ev" + "al"]("1 + 1");`,
      "an indirect Function constructor": `export default () => (() => {}).constructor("return 1")();`,
      "Deno's internal evalContext importing a data: URL":
        `export default async () => (await (Deno as any)[(Deno as any).internal].core.evalContext("import('data:text/javascript,export default 42')", "file:///x.js")[0]).default;`,
      "creating a Worker":
        `export default () => new (globalThis as any).Worker("data:text/javascript,1", { type: "module" });`,
    };
    await t.step("process.getBuiltinModule('module') is refused as a permission", async () => {
      const source =
        `export default () => (globalThis as any).process.getBuiltinModule("module").createRequire("/")("vm");`;
      const result = await runner.run(call(dir.tool("r_builtin_module", source), null));
      assert.equal(code(result), "tool_permission_denied");
    });
    for (const [name, source] of Object.entries(threw)) {
      await t.step(`${name} throws in the tool`, async () => {
        const result = await runner.run(call(dir.tool(`r_${name.replace(/\W+/g, "_")}`, source), null));
        assert.equal(code(result), "tool_threw", name);
      });
    }

    // Outside break attempt brk42: the parser tries each `<T>(` as a generic arrow function, then again as a
    // type assertion, so its work doubles per level, on the runtime's own thread (22 levels: 15 s; 30: hours).
    // 20 levels (a few seconds before) tell the refusal from a parse that ends.
    const nested = (levels: number) =>
      `const b = 1;\nexport default () =>\n  ${"<number>(".repeat(levels)}b${")".repeat(levels)};`;
    await t.step("nested type assertions are refused before the parse runs away", async () => {
      const result = await runner.run(call(dir.tool("nested_assertions", nested(20)), null));
      assert.equal(code(result), "tool_import_refused", JSON.stringify(result));
      assert.match(
        !result.ok ? result.failure.message : "",
        /nested_assertions\.ts:3:\d+: the import check gave up parsing it: .*write `\(x as T\)` instead/,
      );
    });
    // The parse of a refused graph ran again at each of its calls, holding the runtime's thread each time
    // (a 2 MiB module: seconds). Shown with the content replaced under the same modification time: the kept
    // refusal answers; a new modification time is a new check.
    await t.step(
      "a refusal is kept until a file of the graph changes, not parsed again at each call",
      async () => {
        const path = join(dir.path, "nested_assertions.ts");
        const { mtime, atime } = Deno.statSync(path);
        Deno.writeTextFileSync(path, "export default () => 2;");
        Deno.utimeSync(path, atime!, mtime!);
        const kept = await runner.run(call(path, null));
        assert.equal(code(kept), "tool_import_refused", JSON.stringify(kept));
        Deno.utimeSync(path, atime!, new Date(mtime!.getTime() + 1000));
        const rechecked = await runner.run(call(path, null));
        assert.deepEqual(rechecked.ok && rechecked.output, 2, JSON.stringify(rechecked));
      },
    );
    // Outside break attempt brk43: each `<` of a TypeScript expression makes the parser try type arguments
    // first, on a copy of its state, and the copy held every comment still waiting for its node: 30,000
    // commented members of one object (560 KB) made the copies quadratic, ~25 s of parse under the read bound
    // (each character is read about once). The check keeps no comments now (it skips them anyway).
    await t.step("comments waiting for their node do not make each `<` copy them all", async () => {
      const members = Array.from({ length: 30_000 }, (_, i) => `// c\n  k${i}: x < y`).join(",\n");
      const source = `const x = 1, y = 2;\nexport function never() {\n  return {\n${members}};\n}\n` +
        "export default () => 3;\n";
      // The check of 560 KB takes a few seconds; at load ~14 (a full run beside other work) it outlasted the
      // default 10 s wait for a sandbox, a slow machine and not the quadratic parse (minutes) this step is for.
      const slow = { timeoutMs: 60_000 };
      const result = await runner.run(call(dir.tool("commented_members", source), null, slow));
      assert.deepEqual(result.ok && result.output, 3, JSON.stringify(result).slice(0, 500));
    });
    await t.step("a few nested type assertions still parse and run", async () => {
      const result = await runner.run(call(dir.tool("few_assertions", nested(6)), null));
      assert.deepEqual(result.ok && result.output, 1, JSON.stringify(result));
    });

    await t.step("literal imports, JSON imports and import.meta still work", async () => {
      Deno.writeTextFileSync(join(dir.path, "x.ts"), "export default 'x';");
      Deno.writeTextFileSync(join(dir.path, "x.json"), `{ "x": 1 }`);
      const result = await runner.run(call(
        dir.tool(
          "fine",
          `export default async () => [(await import("./x.ts")).default, (await import("./x.json", { with: { type: "json" } })).default.x, typeof import.meta.url];`,
        ),
        null,
      ));
      assert.deepEqual(result.ok && result.output, ["x", 1, "string"]);
    });
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("hole 6: grants cannot reach outside, and a forged log level breaks nothing", async (t) => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  const reader = dir.tool("reader", `export default (p: string) => Deno.readTextFile(p);`);
  try {
    await t.step("a symlink inside a read-granted folder that points outside is refused", async () => {
      // As reported: the link is already there when the tool's sandbox starts.
      Deno.mkdirSync(join(dir.path, "data"));
      Deno.writeTextFileSync(join(dir.path, "data/ok.txt"), "ok");
      Deno.symlinkSync("/etc", join(dir.path, "data/etc_link"));
      const permissions = { read: ["./data"] };
      const result = await runner.run(
        call(reader, join(dir.path, "data/etc_link/hostname"), { permissions }),
      );
      assert.equal(code(result), "tool_permission_denied");
      assert.match(!result.ok ? result.failure.message : "", /etc_link.*points outside/);
      const direct = await runner.run(call(reader, join(dir.path, "data/ok.txt"), { permissions }));
      assert.equal(code(direct), "tool_permission_denied", "no sandbox starts with that grant");
      Deno.removeSync(join(dir.path, "data/etc_link"));
    });

    await t.step("a dangling symlink that points outside is refused too", async () => {
      Deno.mkdirSync(join(dir.path, "dangling"));
      Deno.symlinkSync("/nonexistent-compozy-target", join(dir.path, "dangling/later"));
      const result = await runner.run(call(reader, "x", { permissions: { read: ["./dangling"] } }));
      assert.equal(code(result), "tool_permission_denied");
      assert.match(!result.ok ? result.failure.message : "", /later.*points outside/);
    });

    await t.step("a symlink pointing inside its granted folder is fine", async () => {
      Deno.mkdirSync(join(dir.path, "inner/sub"), { recursive: true });
      Deno.writeTextFileSync(join(dir.path, "inner/sub/f.txt"), "inner");
      Deno.symlinkSync("./sub", join(dir.path, "inner/link"));
      const result = await runner.run(
        call(reader, join(dir.path, "inner/link/f.txt"), { permissions: { read: ["./inner"] } }),
      );
      assert.deepEqual(result.ok && result.output, "inner");
    });

    await t.step("a tool with a write grant cannot create a symlink", async () => {
      Deno.mkdirSync(join(dir.path, "out"));
      const linker = dir.tool("linker", `export default (p: string) => Deno.symlink("/etc", p);`);
      const result = await runner.run(
        call(linker, join(dir.path, "out/l"), { permissions: { read: ["./out"], write: ["./out"] } }),
      );
      assert.equal(code(result), "tool_permission_denied");
    });

    await t.step(
      'a forged log frame (level "constructor") cannot even be posted: the host channel is out of reach',
      async () => {
        const forger = dir.tool(
          "forger",
          // The worker's postMessage is taken from tools (95332e5): every way to it is tried, none is there.
          `export default () => {
          const routes = [globalThis, self, Object.getPrototypeOf(globalThis), Object.getPrototypeOf(Object.getPrototypeOf(globalThis))];
          for (const scope of routes) {
            const post = (scope as any)?.postMessage;
            if (typeof post !== "function") continue;
            for (let id = 0; id < 64; id++) for (const level of ["constructor", "__proto__", "toString", "hasOwnProperty"]) post.call(globalThis, ["log", id, level, "x"]);
            return "posted";
          }
          return "still here";
        };`,
        );
        const fresh = new ToolRunner();
        try {
          const result = await fresh.run(call(forger, null));
          assert.deepEqual(result.ok && result.output, "still here");
          const again = await fresh.run(call(forger, null));
          assert.deepEqual(again.ok && again.output, "still here");
          assert.equal(fresh.stats().spawned, 1, "the process was not killed");
        } finally {
          await fresh.close();
        }
      },
    );
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
