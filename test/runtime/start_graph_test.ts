/**
 * What a runtime process evaluates when it starts: the modules `pkg/runtime/main.ts` reaches through static
 * imports. The AI SDK, the model providers and the MCP SDK are only for agents: they must be reached through
 * literal `import()`s only (loaded at the first agent call, still bundled by `deno compile`), and each provider
 * on its own, so an agent evaluates only the provider its model names.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

interface GraphEdge {
  code?: { specifier?: string };
  isDynamic?: boolean;
}
interface Graph {
  modules: Array<{ specifier: string; dependencies?: GraphEdge[] }>;
  redirects: Record<string, string>;
}

const AGENT_ONLY = ["ai", "ollama-ai-provider-v2", "@modelcontextprotocol/sdk"];

/** The npm package an `npm:` specifier names (`npm:/@ai-sdk/openai@4.0.1/x.js` → `@ai-sdk/openai`). */
function packageOf(specifier: string): string | undefined {
  return /^npm:\/?((?:@[^/@]+\/)?[^/@]+)/.exec(specifier)?.[1];
}

function isAgentOnly(pkg: string): boolean {
  return AGENT_ONLY.includes(pkg) || pkg.startsWith("@ai-sdk/");
}

async function moduleGraph(root: string): Promise<Graph> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", fileURLToPath(import.meta.resolve(root))],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** The specifiers `root` reaches through `code` edges, static only or dynamic too. */
function reached(graph: Graph, root: string, withDynamic: boolean): Set<string> {
  const byUrl = new Map(graph.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const queue = [import.meta.resolve(root)];
  while (queue.length > 0) {
    const url = queue.pop()!;
    const resolved = graph.redirects[url] ?? url;
    if (seen.has(resolved)) continue;
    seen.add(resolved);
    for (const edge of byUrl.get(resolved)?.dependencies ?? []) {
      if (edge.code?.specifier && (withDynamic || !edge.isDynamic)) queue.push(edge.code.specifier);
    }
  }
  return seen;
}

/** The agent-only packages among `specifiers`. */
function agentOnly(specifiers: Set<string>): string[] {
  const packages = [...specifiers].map(packageOf).filter((pkg) => pkg !== undefined && isAgentOnly(pkg));
  return [...new Set(packages as string[])].sort();
}

Deno.test("a runtime starts without evaluating the AI SDK, the model providers or the MCP SDK", async () => {
  const root = "../../pkg/runtime/main.ts";
  const graph = await moduleGraph(root);
  assert.deepEqual(agentOnly(reached(graph, root, false)), []);
  // Still in the graph through import(): a compiled binary bundles them, an agent call loads them.
  assert.deepEqual(agentOnly(reached(graph, root, true)), [
    "@ai-sdk/anthropic",
    "@ai-sdk/google",
    "@ai-sdk/groq",
    "@ai-sdk/openai",
    "@ai-sdk/openai-compatible",
    "@modelcontextprotocol/sdk",
    "ai",
    "ollama-ai-provider-v2",
  ]);
});

Deno.test("the provider factory loads a provider's package only when a model of it is resolved", async () => {
  const root = "../../pkg/runtime/agent/provider_factory.ts";
  const graph = await moduleGraph(root);
  assert.deepEqual(agentOnly(reached(graph, root, false)), []);
});
