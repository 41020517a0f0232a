/**
 * `compozy validate` (and every project load) refuses a tool's `write` grant that reaches the files an MCP
 * `command` server runs: the program named by path, each argument naming a file, a JS/TS file's module graph,
 * the folder of each such file inside the project, and the launchers' `node_modules`, `deno.json` and the like in
 * its working folder. Before, only tool and `script` server modules were
 * kept: a tool granted `write: ["../../mcp"]` could rewrite `./mcp/server.js` of `command: node`, which then
 * ran unsandboxed at the server's next start, with the runtime's rights and the server's env (issue 10, sbx2).
 * Real files and a real `deno info`, through the project check.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkProject, formatDiagnostic } from "../../engine/domain/project/mod.ts";

/** A project whose MCP server is `command` with `args`, and a tool `w` granted `write: [grant]`. */
async function projectWith(root: string, server: string, grant: string): Promise<void> {
  for (const dir of ["mcp/lib", "shared", "conf", "data", "out", "workflows/tools"]) {
    await Deno.mkdir(join(root, dir), { recursive: true });
  }
  await Deno.writeTextFile(join(root, "mcp/server.js"), `require("./lib/util.js");\n`);
  await Deno.writeTextFile(join(root, "mcp/lib/util.js"), "module.exports = 1;\n");
  await Deno.writeTextFile(join(root, "mcp/run.sh"), '#!/bin/sh\nexec node "$(dirname "$0")/server.js"\n');
  await Deno.writeTextFile(join(root, "mcp/server.ts"), `import { hi } from "../shared/util.ts";\nhi();\n`);
  await Deno.writeTextFile(join(root, "shared/util.ts"), "export const hi = () => 1;\n");
  await Deno.writeTextFile(join(root, "conf/mcp.json"), "{}\n");
  await Deno.writeTextFile(join(root, "workflows/tools/w.ts"), "export default () => 1;\n");
  await Deno.writeTextFile(
    join(root, "compozy.yaml"),
    `name: p\nversion: 0.1.0\nworkflows:\n  - source: ./workflows/w.yaml\nmcp:\n  - id: orders\n${server}` +
      (server.includes("env:") ? "" : `    env:\n      ORDERS_KEY: "k"\n`),
  );
  await Deno.writeTextFile(
    join(root, "workflows/w.yaml"),
    `id: w\nversion: 0.1.0\ntools:\n  - id: w\n    execute: ./tools/w.ts\n    permissions:\n` +
      `      write: ["${grant}"]\ntasks:\n  - id: t\n    use: tool(id=w)\n`,
  );
}

async function diagnosticsOf(server: string, grant: string): Promise<string[]> {
  const root = await Deno.makeTempDir({ prefix: "compozy-command-grants-" });
  try {
    await projectWith(root, server, grant);
    return (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const grantError = (found: string[]) =>
  found.filter((d) => d.startsWith("workflows/w.yaml:") && d.includes("tools[0].permissions.write[0]"));

Deno.test("compozy validate refuses a tool's write grant on the files an MCP command server runs", async (t) => {
  const cases = [
    {
      name: "the folder of the script an interpreter runs (node ./mcp/server.js)",
      server: `    command: node\n    args: [./mcp/server.js]\n`,
      grant: "../../mcp",
      says: "reaches ../../mcp, a folder an MCP command server may load code from",
    },
    {
      name: "a folder inside it, whose module the script requires",
      server: `    command: node\n    args: [./mcp/server.js]\n`,
      grant: "../../mcp/lib",
      says: "reaches ../../mcp, a folder an MCP command server may load code from",
    },
    {
      name: "the program itself, named by path",
      server: `    command: ./mcp/run.sh\n`,
      grant: "../../mcp/run.sh",
      says: "reaches ../../mcp, a folder an MCP command server may load code from",
    },
    {
      name: "a module of a Deno server's graph, outside its folder",
      server: `    command: deno\n    args: [run, -A, ./mcp/server.ts]\n`,
      grant: "../../shared",
      says: "covers ../../shared/util.ts, a file an MCP command server runs or reads at its start",
    },
    {
      name: "a file named as an option's value",
      server: `    command: npx\n    args: [-y, "@acme/mcp", "--config=./conf/mcp.json"]\n`,
      grant: "../../conf",
      says: "reaches ../../conf, a folder an MCP command server may load code from",
    },
    {
      name: "the node_modules a launcher runs packages from, in the server's working folder",
      server: `    command: npx\n    args: [-y, "@acme/mcp"]\n`,
      grant: "../../node_modules/@acme",
      says: "reaches ../../node_modules, a folder an MCP command server may load code from",
    },
    {
      name: "a launcher's settings in the server's working folder, not yet written",
      server: `    command: deno\n    args: [run, -A, ./mcp/server.ts]\n`,
      grant: "../../deno.json",
      says: "covers ../../deno.json, a file an MCP command server runs or reads at its start",
    },
    {
      name: "a script a shell's command line runs (sh -c)",
      server: `    command: sh\n    args: [-c, "cd . && exec node ./shared/util.ts --port=1"]\n`,
      grant: "../../shared",
      says: "reaches ../../shared, a folder an MCP command server may load code from",
    },
    {
      name: "a module a variable of its env: loads (NODE_OPTIONS)",
      server:
        `    command: npx\n    args: [-y, "@acme/mcp"]\n    env:\n      NODE_OPTIONS: "--require=./conf/mcp.json"\n`,
      grant: "../../conf",
      says: "reaches ../../conf, a folder an MCP command server may load code from",
    },
    {
      name: "a folder its env: puts on a module path (PYTHONPATH), not named anywhere else",
      server:
        `    command: python3\n    args: [./data/serve.py]\n    env:\n      PYTHONPATH: "/nonexistent:./out/lib"\n`,
      grant: "../../out",
      says: "reaches ../../out/lib, a folder an MCP command server may load code from",
    },
    {
      name: "a folder directly in the working folder of a Python server run with -m (a package it imports)",
      server: `    command: uvx\n    args: [--from, acme-mcp, python3, -m, acme_mcp]\n`,
      grant: "../../mcp",
      says: "reaches ../.., the working folder of an MCP command server that runs Python with -m or -c",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const found = await diagnosticsOf(c.server, c.grant);
      // Before: the project was valid.
      assert.ok(grantError(found).some((d) => d.includes(c.says)), found.join("\n") || "valid");
    });
  }
});

Deno.test("a write grant beside a command server's files, or on a folder it is given, stays valid", async (t) => {
  const node = `    command: node\n    args: [./mcp/server.js, ./data, --flag, -y, "@acme/mcp"]\n`;
  const cases = [
    { name: "a folder of the project the server does not run", server: node, grant: "../../out" },
    { name: "a data folder passed as an argument", server: node, grant: "../../data" },
    {
      name: "a folder two levels inside the working folder of a Python -m server (no package name there)",
      server: `    command: python3\n    args: [-m, acme_mcp]\n`,
      grant: "../../out/files",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const found = await diagnosticsOf(c.server, c.grant);
      assert.deepEqual(grantError(found), []);
    });
  }
});
