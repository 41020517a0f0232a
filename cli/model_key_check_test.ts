/** `compozy dev` warns at start about a model key that is unset, empty or a placeholder. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadProject } from "../engine/domain/project/mod.ts";
import { modelKeyWarnings } from "./model_key_check.ts";

const WEATHER = fileURLToPath(new URL("../examples/weather-agent", import.meta.url));

async function projectWith(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-keys-" });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
  return dir;
}

const AGENT_WORKFLOW = (model: string) =>
  `id: w
agents:
  - id: a
    config: ${model}
    instructions: Be brief.
    actions: [{ id: go, prompt: Go }]
tasks:
  - id: t
    use: agent(id=a)
    action: go
`;

Deno.test("model key check", async (t) => {
  await t.step(
    "weather-agent without a key: names the model, the variable, the file and the offline model",
    async () => {
      const project = await loadProject(WEATHER, { processEnv: {} });
      const lines = modelKeyWarnings(project, {});
      assert.equal(lines.length, 1);
      assert.match(lines[0], /^model 'default' \(openai\): OPENAI_API_KEY is unset;/);
      assert.match(lines[0], /examples\/weather-agent\/\.env \(copy \.env\.example\)/);
      assert.match(lines[0], /model 'offline' \(provider: mock\)/);
    },
  );

  await t.step("a placeholder or empty value is named as such; a real one is not warned about", async () => {
    const project = await loadProject(WEATHER, { processEnv: {} });
    assert.match(modelKeyWarnings(project, { OPENAI_API_KEY: "sk-replace-me" })[0], /is a placeholder/);
    assert.match(modelKeyWarnings(project, { OPENAI_API_KEY: " " })[0], /is empty/);
    assert.deepEqual(modelKeyWarnings(project, { OPENAI_API_KEY: "sk-proj-abc123" }), []);
  });

  await t.step("the env file counts, the process environment wins over it", async () => {
    const dir = await projectWith({
      "compozy.yaml": `name: p
workflows: [{ source: ./w.yaml }]
models: [{ id: m, provider: anthropic, model: claude, api_key: "{{ .env.MY_KEY }}" }]
`,
      "w.yaml": AGENT_WORKFLOW("{ $model: m }"),
      ".env": "MY_KEY=sk-ant-real\n",
    });
    try {
      const project = await loadProject(dir, { processEnv: {} });
      assert.deepEqual(modelKeyWarnings(project, {}), []);
      assert.match(modelKeyWarnings(project, { MY_KEY: "" })[0], /^model 'm' \(anthropic\): MY_KEY is empty/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step(
    "an inline model without api_key is checked against its provider's variable; mock needs none",
    async () => {
      const dir = await projectWith({
        "compozy.yaml": "name: p\nworkflows: [{ source: ./w.yaml }, { source: ./x.yaml }]\n",
        "w.yaml": AGENT_WORKFLOW("{ provider: groq, model: llama }"),
        "x.yaml": AGENT_WORKFLOW("{ provider: mock, model: scripted }").replace("id: w", "id: x"),
      });
      try {
        const lines = modelKeyWarnings(await loadProject(dir, { processEnv: {} }), {});
        assert.equal(lines.length, 1);
        assert.match(lines[0], /^inline model groq\/llama \(groq\): GROQ_API_KEY is unset/);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
});
