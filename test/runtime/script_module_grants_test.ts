/**
 * `compozy validate` refuses a tool's `write` grant that covers another tool's module graph (issue 10 hole 6),
 * and an MCP `script` server's file, but it looked at the script file alone, and only for a server with
 * `permissions`: a tool granted `write` on the folder of a module the script imports (`mcp/lib/`) was valid,
 * and so was one covering the whole `mcp/` folder of a server without `permissions`. The rewritten module
 * runs at the server's next start with the server's env and grants, and answers the agent as the server
 * (issue 10, sbx). Real `deno info` of the script's graph, through the project check.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkProject, formatDiagnostic } from "../../engine/domain/project/mod.ts";

/** A project with an MCP script server importing `./lib/util.ts` and a tool granted `write: [grant]`. */
async function projectWith(root: string, grant: string, serverPermissions: string): Promise<void> {
  await Deno.mkdir(join(root, "mcp/lib"), { recursive: true });
  await Deno.mkdir(join(root, "workflows/tools"), { recursive: true });
  await Deno.writeTextFile(
    join(root, "mcp/orders.ts"),
    `import { hi } from "./lib/util.ts";\nconsole.log(hi);\n`,
  );
  await Deno.writeTextFile(join(root, "mcp/lib/util.ts"), "export const hi = 1;\n");
  await Deno.writeTextFile(join(root, "workflows/tools/w.ts"), "export default () => 1;\n");
  await Deno.writeTextFile(
    join(root, "compozy.yaml"),
    `name: p\nversion: 0.1.0\nworkflows:\n  - source: ./workflows/w.yaml\nmcp:\n  - id: orders\n` +
      `    script: ./mcp/orders.ts\n    env:\n      ORDERS_KEY: "k"\n${serverPermissions}`,
  );
  await Deno.writeTextFile(
    join(root, "workflows/w.yaml"),
    `id: w\nversion: 0.1.0\ntools:\n  - id: w\n    execute: ./tools/w.ts\n    permissions:\n` +
      `      write: ["${grant}"]\ntasks:\n  - id: t\n    use: tool(id=w)\n`,
  );
}

Deno.test("compozy validate refuses a tool's write grant on an MCP script server's module graph", async (t) => {
  const cases = [
    {
      name: "a module the script imports, of a server with permissions",
      grant: "../../mcp/lib",
      permissions: `    permissions:\n      env: ["ORDERS_KEY"]\n`,
      covered: "mcp/lib/util.ts",
    },
    {
      name: "the script's folder, of a server without permissions",
      grant: "../../mcp",
      permissions: "",
      // The first of the graph's files it covers, in path order.
      covered: "mcp/lib/util.ts",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const root = await Deno.makeTempDir({ prefix: "compozy-script-grants-" });
      try {
        await projectWith(root, c.grant, c.permissions);
        const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
        // Before: the project was valid.
        assert.ok(
          found.some((d) =>
            d.startsWith("workflows/w.yaml:") && d.includes("tools[0].permissions.write[0]") &&
            d.includes(`covers the MCP script server module ../../${c.covered}`)
          ),
          found.join("\n") || "valid",
        );
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    });
  }
});
