/**
 * The shipped examples: each validates with no diagnostic at all, and every YAML file names its JSON Schema
 * for editors on its first line.
 */

import assert from "node:assert/strict";
import { basename, dirname, join, relative, resolve } from "node:path";
import { checkProject, formatDiagnostic, loadProject } from "../../engine/domain/project/mod.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;
const examples = [...Deno.readDirSync(EXAMPLES)].filter((e) => e.isDirectory).map((e) => e.name).sort();

function yamlFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory ? yamlFiles(path) : /\.ya?ml$/.test(e.name) ? [path] : [];
  });
}

Deno.test("examples", async (t) => {
  assert.ok(examples.length >= 4, `examples: ${examples.join(", ")}`);
  for (const name of examples) {
    await t.step(`${name} validates clean`, async () => {
      const dir = join(EXAMPLES, name);
      const diagnostics = await checkProject(dir, { processEnv: { OPENAI_API_KEY: "test-key" } });
      assert.deepEqual(diagnostics.map((d) => formatDiagnostic(d, dir)), []);
    });
    await t.step(`${name}: every YAML file starts with its schema line`, () => {
      for (const file of yamlFiles(join(EXAMPLES, name))) {
        const first = Deno.readTextFileSync(file).split("\n")[0];
        const match = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
        assert.ok(match, `${relative(EXAMPLES, file)} starts with ${first}`);
        const schema = resolve(dirname(file), match[1]);
        const want = basename(file) === "compozy.yaml" ? "compozy.json" : "workflow.json";
        assert.equal(relative(resolve(EXAMPLES, "../schemas"), schema), want, relative(EXAMPLES, file));
        assert.ok(Deno.statSync(schema).isFile);
      }
    });
  }
  await t.step("hello needs no agent and no key", async () => {
    const project = await loadProject(join(EXAMPLES, "hello"), { processEnv: {} });
    assert.deepEqual(project.warnings, []);
    assert.equal(project.models.size, 0);
    const workflow = project.workflows.get("hello")!;
    assert.equal(workflow.agents.size, 0);
    assert.deepEqual([...workflow.tasks.keys()], ["greet", "shout", "summarize"]);
    assert.deepEqual(workflow.config.triggers?.map((tr) => tr.type), ["webhook"]);
  });
});
