/**
 * A provider package that cannot load (a broken install, a compiled binary built without it) fails only the
 * agents whose model names that provider, with `agent_config_invalid` naming it: the process runs, and every
 * other provider still builds. Each provider is loaded on its first use (provider_factory.ts), so the
 * package is made missing for a real `deno run` through an import map that points it at no file.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const DENO_JSON = new URL("../../deno.json", import.meta.url);

/** deno.json's import map with `@ai-sdk/groq` pointed at a file that does not exist. */
async function importMapWithoutGroq(dir: string): Promise<string> {
  const { imports } = JSON.parse(await Deno.readTextFile(DENO_JSON)) as { imports: Record<string, string> };
  const absolute = Object.fromEntries(
    Object.entries(imports).map((
      [name, target],
    ) => [name, /^\.\.?\//.test(target) ? new URL(target, DENO_JSON).href : target]),
  );
  const path = `${dir}/import_map.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      imports: { ...absolute, "@ai-sdk/groq": new URL(`file://${dir}/no_such_groq.js`).href },
    }),
  );
  return path;
}

const PROBE = `
import { runAgent } from ${JSON.stringify(import.meta.resolve("../../pkg/runtime/agent/agent_runner.ts"))};
import { resolveModel } from ${
  JSON.stringify(import.meta.resolve("../../pkg/runtime/agent/provider_factory.ts"))
};
const result = await runAgent({
  agentId: "forecaster",
  model: { provider: "groq", model: "llama-3.3-70b-versatile", api_key: "k" },
  instructions: "Be brief.",
  prompt: "Weather?",
  tools: [],
  callTool: () => Promise.reject(new Error("no tools")),
});
const openai = await resolveModel({ provider: "openai", model: "gpt-4o-mini", api_key: "k" });
console.log(JSON.stringify({
  ok: result.ok,
  failure: result.ok ? undefined : {
    code: result.failure.code,
    retryable: result.failure.retryable,
    details: result.failure.details,
    message: result.failure.message,
  },
  openai: openai.model.provider,
}));
`;

Deno.test("a provider package that cannot load fails only its agents, with agent_config_invalid", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-provider-load-" });
  try {
    const importMap = await importMapWithoutGroq(dir);
    await Deno.writeTextFile(`${dir}/probe.ts`, PROBE);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-check",
        "--node-modules-dir=manual",
        "--import-map",
        importMap,
        `${dir}/probe.ts`,
      ],
      cwd: fileURLToPath(new URL(".", DENO_JSON)),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, stderr);
    const report = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(report.ok, false);
    assert.equal(report.failure.code, "agent_config_invalid");
    assert.equal(report.failure.retryable, false);
    assert.deepEqual(report.failure.details, { field: "provider" });
    assert.match(
      report.failure.message,
      /^agent 'forecaster': Cannot load the groq provider: .*no_such_groq\.js/,
    );
    assert.equal(report.openai, "openai.chat");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
