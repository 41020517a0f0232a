/**
 * `compozy validate` asks each MCP server for its tools: a reachable server's tools are listed, one that is
 * down is a warning (not an error), and a selected tool the server does not list is a warning with a hint.
 */

import assert from "node:assert/strict";
import { runValidate } from "../../cli/commands/validate.ts";
import { writeProject } from "../support/engine.ts";
import { startMcpTestServer } from "../support/mcp_server.ts";

const tool = (name: string) => ({ name, run: () => ({ content: [] }) });

Deno.test({
  name: "compozy validate lists the tools of reachable MCP servers and warns about the rest",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using up = startMcpTestServer({ tools: [tool("search"), tool("fetch_page")] });
    const down = startMcpTestServer({ tools: [] });
    await down.close();
    const dir = await writeProject({
      "compozy.yaml": `name: probe
workflows: [{ source: ./wf.yaml }]
env: { DOCS_TOKEN: t0ken }
mcp:
  - id: docs
    url: ${up.url}
    headers: { Authorization: "Bearer {{ .env.DOCS_TOKEN }}" }
  - id: gone
    url: ${down.url}
    timeout: 5s
`,
      "wf.yaml": `id: w
agents:
  - id: helper
    config: { provider: mock, model: m }
    instructions: Help.
    tools: ["mcp(id=docs, tool=serch)", "mcp(id=gone)"]
    actions: [{ id: answer, prompt: hi }]
tasks:
  - id: a
    use: agent(id=helper)
    action: answer
`,
    });
    const lines: string[] = [];
    const saved = { log: console.log, warn: console.warn, error: console.error };
    // Deno.serve's one-time notice about request.signal (the SDK's server transport reads it) is not validate's.
    console.log = console.warn = console.error = (...args: unknown[]) => {
      if (!String(args[0]).startsWith("Deno.serve:")) lines.push(args.join(" "));
    };
    let code: number;
    try {
      code = await runValidate({ cwd: dir });
    } finally {
      Object.assign(console, saved);
      await Deno.remove(dir, { recursive: true });
    }
    assert.equal(code, 0, lines.join("\n"));
    assert.match(
      lines[0],
      /^compozy\.yaml:8:5: mcp\[1\]: warning: MCP server "gone" could not be reached to list its tools: MCP server 'gone' \(http:\/\/127\.0\.0\.1:\d+\/mcp\): connecting failed/,
    );
    assert.equal(
      lines[1],
      'wf.yaml:6:13: agents[0].tools[0]: warning: MCP server "docs" does not list tool "serch" (it lists: search, fetch_page) (did you mean "search"?)',
    );
    assert.deepEqual(lines.slice(2), [
      "mcp server docs: search, fetch_page",
      "project is valid (2 warning(s))",
    ]);
    assert.ok(up.requests.every((r) => r.headers.get("authorization") === "Bearer t0ken"));
  },
});
