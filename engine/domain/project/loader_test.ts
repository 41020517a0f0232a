import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { checkProject, ConfigError, formatDiagnostic, loadProject, resolveUse } from "./mod.ts";

async function project(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-loader-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(join(dir, name)), { recursive: true });
    await Deno.writeTextFile(join(dir, name), text);
  }
  return dir;
}

const TOOL = "export default () => ({});\n";

Deno.test("loadProject", async (t) => {
  const dir = await project({
    "compozy.yaml": [
      "name: demo",
      "workflows: [{ source: ./workflows/main.yaml }, { source: ./workflows/sub.yaml }]",
      "env: { LEVEL: project }",
      "models: [{ id: default, provider: ollama, model: llama3 }]",
      "tools: [{ id: shared, execute: ./tools/shared.ts }, { id: local, execute: ./tools/shared.ts }]",
      "agents:",
      "  - id: helper",
      "    config: { $model: default }",
      "    instructions: Help.",
      "    tools: [local]",
      "    actions: [{ id: answer, prompt: 'Answer {{ .input.q }}' }]",
    ].join("\n"),
    ".env": "SECRET=from-env-file\n",
    "tools/shared.ts": TOOL,
    "workflows/main.yaml": [
      "id: main",
      "tools: [{ id: local, execute: ./local.ts }]",
      "tasks:",
      "  - { id: first, use: tool(id=local) }",
      "  - { id: second, use: tool(id=shared) }",
      "  - { id: third, use: 'tool(file=./defs/tool.yaml)' }",
      "  - { id: fourth, use: agent(id=helper), action: answer, with: { q: '{{ .env.SECRET }}' } }",
      "  - id: fan",
      "    type: parallel",
      "    tasks: [{ id: child, use: workflow(id=sub) }]",
    ].join("\n"),
    "workflows/local.ts": TOOL,
    "workflows/defs/tool.yaml": "id: from_file\nexecute: ./impl.ts\ntimeout: 5s\n",
    "workflows/defs/impl.ts": TOOL,
    "workflows/sub.yaml": "id: sub\ntasks: [{ id: only, type: sleep, duration: 1s }]\n",
  });
  const loaded = await loadProject(dir, { processEnv: {} });
  const main = loaded.workflows.get("main")!;

  await t.step("loads the project, its env and its env file", () => {
    assert.equal(loaded.root, dir);
    assert.equal(loaded.file, join(dir, "compozy.yaml"));
    assert.deepEqual(loaded.env, { LEVEL: "project" });
    assert.deepEqual(loaded.envFile, { SECRET: "from-env-file" });
    assert.deepEqual([...loaded.models.keys()], ["default"]);
    assert.deepEqual([...loaded.workflows.keys()], ["main", "sub"]);
    assert.deepEqual(loaded.warnings, []);
  });

  await t.step("indexes every task, inline children included, with `type` normalised", () => {
    assert.deepEqual([...main.tasks.keys()], ["first", "second", "third", "fourth", "fan", "child"]);
    assert.equal(main.tasks.get("first")!.type, "basic");
    assert.equal(main.tasks.get("child")!.type, "basic");
    assert.equal(main.dir, join(dir, "workflows"));
  });

  await t.step("resolveUse looks in the workflow first, then the project", () => {
    const local = resolveUse(loaded, main, "tool(id=local)");
    assert.equal(local.kind === "tool" && local.tool.executePath, join(dir, "workflows/local.ts"));
    const shared = resolveUse(loaded, main, "tool(id=shared)");
    assert.equal(shared.kind === "tool" && shared.tool.executePath, join(dir, "tools/shared.ts"));
    const agent = resolveUse(loaded, main, "agent(id=helper)");
    assert.equal(agent.kind === "agent" && agent.agent.file, join(dir, "compozy.yaml"));
    const sub = resolveUse(loaded, main, "workflow(id=sub)");
    assert.equal(sub.kind === "workflow" && sub.workflow, loaded.workflows.get("sub"));
  });

  await t.step("resolveUse finds file= definitions loaded with the project", () => {
    const used = resolveUse(loaded, main, "tool(file=./defs/tool.yaml)");
    assert.ok(used.kind === "tool");
    assert.equal(used.tool.id, "from_file");
    assert.equal(used.tool.file, join(dir, "workflows/defs/tool.yaml"));
    assert.equal(used.tool.executePath, join(dir, "workflows/defs/impl.ts"));
  });

  await t.step("resolveUse throws on a reference the project does not have", () => {
    assert.throws(() => resolveUse(loaded, main, "tool(id=nope)"), RangeError);
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadProject reports every error of every file in one ConfigError", async () => {
  const dir = await project({
    "compozy.yaml": "name: demo\nworkflows: [{ source: ./a.yaml }, { source: ./b.yaml }]\nextra: 1\n",
    "a.yaml": "id: a\ntasks: [{ id: x, use: tool(id=nope) }]\n",
    "b.yaml":
      "id: b\ntasks: [{ id: y, type: sleep, duration: 1s, final: true }, { id: z, type: sleep, duration: 1s }]\n",
  });
  try {
    await assert.rejects(() => loadProject(dir, { processEnv: {} }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.diagnostics.map((d) => formatDiagnostic(d, dir)), [
        'a.yaml:2:23: tasks[0].use: unknown tool "nope": not declared in this workflow or the project',
        'b.yaml:2:60: tasks[1]: warning: task "z" can never run: no path from the first task "y" leads to it',
        'compozy.yaml:3:1: extra: unknown field "extra"',
      ]);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadProject keeps warnings on a project that loads", async () => {
  const dir = await project({
    "compozy.yaml": "name: demo\nworkflows: [{ source: ./w.yaml }]\n",
    "w.yaml": "id: w\ntasks: [{ id: a, type: aggregate, outputs: { k: '{{ .env.MISSING }}' } }]\n",
  });
  try {
    const loaded = await loadProject(dir, { processEnv: {} });
    assert.deepEqual(loaded.warnings.map((d) => formatDiagnostic(d, dir)), [
      "w.yaml:2:49: tasks[0].outputs.k: warning: .env.MISSING is not set in any env: map, the process environment or the env file; rendering fails until it is",
    ]);
    assert.deepEqual((await loadProject(dir, { processEnv: { MISSING: "now set" } })).warnings, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a `with:` may leave out a field the sub-workflow's input schema gives a default, as the engine accepts", async () => {
  const kid = [
    "id: kid",
    "config:",
    "  input:",
    "    type: object",
    "    properties: { n: { type: integer, default: 1 }, mode: { enum: [fast, slow] } }",
    "    required: [n]",
    "tasks: [{ id: nap, type: sleep, duration: 1ms }]",
  ].join("\n");
  const files = (caller: string) => ({
    "compozy.yaml": "name: defaults\nworkflows: [{ source: ./caller.yaml }, { source: ./kid.yaml }]\n",
    "kid.yaml": kid,
    "caller.yaml": `id: caller\ntasks:\n${caller}\n`,
  });
  const fits = await project(files("  - { id: ok, use: workflow(id=kid), with: {} }"));
  const misfits = await project(files("  - { id: bad, use: workflow(id=kid), with: { mode: medium } }"));
  try {
    const loaded = await loadProject(fits);
    // The check fills the defaults into a copy: the task still passes what its file says.
    assert.deepEqual(loaded.workflows.get("caller")!.tasks.get("ok")!.with, {});
    const error = await loadProject(misfits).then(() => undefined, (e) => e);
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(error.diagnostics.map((d) => formatDiagnostic(d, misfits)), [
      'caller.yaml:3:53: tasks[0].with.mode: does not fit the input of workflow "kid": must be one of "fast", ' +
      '"slow", found string "medium"',
    ]);
  } finally {
    await Deno.remove(fits, { recursive: true });
    await Deno.remove(misfits, { recursive: true });
  }
});

Deno.test("an env file that is a folder is an error at env_file, not an internal error", async () => {
  const workflow = "id: a\ntasks: [{ id: x, type: sleep, duration: 1s }]\n";
  const named = await project({
    "compozy.yaml": "name: demo\nenv_file: ./conf\nworkflows: [{ source: ./a.yaml }]\n",
    "conf/keep": "",
    "a.yaml": workflow,
  });
  const byDefault = await project({
    "compozy.yaml": "name: demo\nworkflows: [{ source: ./a.yaml }]\n",
    ".env/keep": "",
    "a.yaml": workflow,
  });
  try {
    for (
      const [dir, expected] of [[named, "compozy.yaml:2:11: env_file:"], [byDefault, "compozy.yaml:1:1:"]]
    ) {
      await assert.rejects(() => loadProject(dir, { processEnv: {} }), (err: unknown) => {
        assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`);
        const lines = err.diagnostics.map((d) => formatDiagnostic(d, dir));
        assert.equal(lines.length, 1, lines.join("\n"));
        assert.ok(lines[0].startsWith(expected), lines[0]);
        assert.match(lines[0], /is a folder, not an env file$/);
        return true;
      });
    }
  } finally {
    await Deno.remove(named, { recursive: true });
    await Deno.remove(byDefault, { recursive: true });
  }
});

Deno.test("a path given to default() may be missing: an undeclared input field warns, an unset env name is fine", async () => {
  const dir = await project({
    "compozy.yaml": "name: demo\nworkflows: [{ source: ./a.yaml }]\n",
    "tools/echo.ts": TOOL,
    "a.yaml": [
      "id: a",
      "config: { input: { type: object, properties: { city: { type: string } } } }",
      "tools: [{ id: echo, execute: ./tools/echo.ts }]",
      "tasks:",
      "  - id: t",
      "    use: tool(id=echo)",
      "    with:",
      "      n: '{{ .workflow.input.n | default(0) }}'",
      "      d: '{{ .env.NOPE | default(\"d\") }}'",
      "      e: '{{ default(.env.NOPE, 5) }}'",
      "      f: '{{ .env.NOPE }}'",
      "      g: '{{ .workflow.input.n }}'",
    ].join("\n"),
  });
  try {
    const lines = (await checkProject(dir, { processEnv: {} })).map((d) => formatDiagnostic(d, dir));
    assert.deepEqual(lines, [
      'a.yaml:8:10: tasks[0].with.n: warning: .workflow.input.n: unknown input field "n"; `default` renders when it is absent',
      "a.yaml:11:10: tasks[0].with.f: warning: .env.NOPE is not set in any env: map, the process environment or the env file; rendering fails until it is",
      'a.yaml:12:10: tasks[0].with.g: .workflow.input.n: unknown input field "n"',
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
