/**
 * `compozy validate` reports every error in one run (CONFIG.md): a file's schema errors do not hide its
 * duplicate ids, unknown references, cycles and missing files, nor the errors of other files, and a task
 * left out for a schema error is no "unknown task" where its readable id is named.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { checkProject, formatDiagnostic } from "../../engine/domain/project/mod.ts";
import { runCli } from "../e2e/support/dev_server.ts";

const FILES: Record<string, string> = {
  "compozy.yaml": `name: multi
workflows:
  - source: ./a.yaml
  - source: ./b.yaml
  - source: ./c.yaml
  - source: ./d.yaml
  - source: ./e.yaml
`,
  "t.ts": "export default () => ({});\n",
  // A task with an unknown field among tasks with a bad reference, a duplicate, a missing tool file, an
  // unknown transition and a transition cycle; `second` and `third` name the broken task's id.
  "a.yaml": `id: a
triggers:
  - { type: webhook, config: { url: /hook } }
tools:
  - { id: t, execute: ./t.ts }
tasks:
  - id: first
    use: tool(id=t)
    timout: 30s
    on_success: { next: second }
  - id: second
    use: tool(id=nope)
    on_error: { next: first }
  - id: first
    use: tool(id=t)
  - id: third
    use: tool(file=./missing.yaml)
    on_success: { next: nowhere }
    with: { x: "{{ .tasks.first.output }}" }
  - id: loop_a
    use: tool(id=t)
    on_success: { next: loop_b }
  - id: loop_b
    use: tool(id=t)
    on_success: { next: loop_a }
`,
  // A workflow field with an error; a parallel whose first child has an error and second a bad reference.
  "b.yaml": `id: b
description: 42
tasks:
  - id: call_c
    use: workflow(id=c)
  - id: call_ghost
    use: workflow(id=ghost)
  - id: fan
    type: parallel
    tasks:
      - { id: kid_bad, use: tool(id=t2), bogus: 1 }
      - { id: kid_ok, use: agent(id=nobody) }
      - { id: call_c }
`,
  // A task and a trigger with an error; the other task calls b back (a sub-workflow cycle); the other
  // trigger takes a webhook url a already uses.
  "c.yaml": `id: c
triggers:
  - { type: schedule, config: { cron: "0 7 * * *", bogus: 1 } }
  - { type: webhook, config: { url: /hook } }
tasks:
  - id: broken
    use: workflow(id=b)
    retry: { max_attempts: 0 }
  - id: back
    use: workflow(id=b)
    on_success: { next: broken }
`,
  // A bad field and a workflow id already taken; still checked on its own.
  "d.yaml": `id: a
version: [1]
tasks:
  - { id: x, type: sleep, duration: 1s, on_success: { next: y } }
`,
  // No id: checked on its own, under its file name.
  "e.yaml": `tasks:
  - { id: z, type: sleep, duration: 1s }
  - { id: z, type: sleep, duration: 1s }
  - { id: w, type: sleep, duration: 1s, on_success: { next: gone } }
`,
};

const EXPECTED = [
  'a.yaml:9:5: tasks[0].timout: unknown field "timout" (did you mean "timeout"?)',
  'a.yaml:12:10: tasks[1].use: unknown tool "nope": not declared in this workflow or the project',
  'a.yaml:14:9: tasks[2].id: duplicate task id "first" (first declared at line 7)',
  "a.yaml:17:10: tasks[3].use: tool file not found: ./missing.yaml",
  'a.yaml:18:25: tasks[3].on_success.next: unknown task "nowhere" in workflow "a"',
  'a.yaml:25:25: tasks[5].on_success.next: cycle in transitions: "loop_a" → "loop_b" → "loop_a"',
  "b.yaml:2:14: description: expected a string, found integer 42",
  'b.yaml:7:10: tasks[1].use: unknown workflow "ghost": not declared in the project',
  'b.yaml:11:29: tasks[2].tasks[0].use: unknown tool "t2": not declared in this workflow or the project',
  'b.yaml:11:42: tasks[2].tasks[0].bogus: unknown field "bogus"',
  'b.yaml:12:28: tasks[2].tasks[1].use: unknown agent "nobody": not declared in this workflow or the project',
  'b.yaml:13:9: tasks[2].tasks[2]: missing required field "use"',
  'b.yaml:13:15: tasks[2].tasks[2].id: duplicate task id "call_c" (first declared at line 4)',
  'c.yaml:3:52: triggers[0].config.bogus: unknown field "bogus"',
  'c.yaml:4:37: triggers[1].config.url: duplicate webhook url "/hook" (first used by workflow "a", line 3)',
  "c.yaml:8:28: tasks[0].retry.max_attempts: expected a number >= 1, found integer 0",
  'c.yaml:10:10: tasks[1].use: cycle in sub-workflows: "b" → "c" → "b"',
  'd.yaml:1:5: id: duplicate workflow id "a" (first declared in a.yaml)',
  "d.yaml:2:10: version: expected a string, found a list",
  'd.yaml:4:61: tasks[0].on_success.next: unknown task "y" in workflow "a" (did you mean "x"?)',
  'e.yaml:1:1: (root): missing required field "id"',
  'e.yaml:3:11: tasks[1].id: duplicate task id "z" (first declared at line 2)',
  'e.yaml:4:61: tasks[2].on_success.next: unknown task "gone" in workflow "./e.yaml"',
];

async function writeProject(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-every-error-" });
  for (const [name, text] of Object.entries(FILES)) await Deno.writeTextFile(join(dir, name), text);
  return dir;
}

Deno.test("compozy validate lists schema and semantic errors of every file in one run, each once", async () => {
  const dir = await writeProject();
  try {
    const { code, stdout, stderr } = await runCli(["validate", "--cwd", dir], { OPENAI_API_KEY: "" });
    const lines = (stdout + stderr).split("\n").filter((line) => line.length > 0);
    for (const line of EXPECTED) {
      assert.equal(lines.filter((l) => l === line).length, 1, `once: ${line}\n--- got:\n${lines.join("\n")}`);
    }
    // Nothing else: no "unknown task" for a task left out for its own error, no second report of anything.
    assert.deepEqual(lines.toSorted(), EXPECTED.toSorted());
    assert.equal(code, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkProject returns the same diagnostics, in file and line order", async () => {
  const dir = await writeProject();
  try {
    const lines = (await checkProject(dir, { processEnv: {} })).map((d) => formatDiagnostic(d, dir));
    assert.deepEqual(lines, EXPECTED);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * What a schema error used to hide: a tool or agent with one (inline, or in its own `file=` file) was
 * dropped whole, so its missing module, its unknown model, the `action:` and `with:` of the tasks using it
 * went unchecked; a task with a misspelt `type` hid its children's ids (a `next:` naming one was "unknown",
 * a duplicate among them missed); a workflow file that does not parse made each reference to its id an
 * "unknown workflow".
 */
const HIDDEN_FILES: Record<string, string> = {
  "compozy.yaml": `name: hidden
workflows:
  - source: ./w.yaml
  - source: ./unparsable.yaml
tools:
  - id: ptool
    execute: ./no_ptool.ts
    timeout: banana
agents:
  - id: pagent
    config: { $model: ghost }
    instructions: hi
    max_steps: zero
    actions:
      - { id: go, prompt: go }
`,
  // A tool file with a bad field and a missing module; an agent file with an unknown field.
  "tf.yaml": `id: tf
execute: ./no_tf.ts
timeout: banana
input: { type: object, properties: { n: { type: number } }, additionalProperties: false }
`,
  "af.yaml": `id: af
config: { $model: ghost }
instructions: hi
bogus: 1
actions:
  - { id: act, prompt: p }
`,
  // A workflow tool missing a module beside a bad field; tasks using each definition with a schema error;
  // a parallel with its type misspelt, whose children repeat an id and are named by a next.
  "w.yaml": `id: w
tools:
  - id: wtool
    execute: ./no_wtool.ts
    bogus: 1
tasks:
  - id: a
    use: tool(file=./tf.yaml)
    with: { n: "x", extra: 1 }
  - id: b
    use: agent(file=./af.yaml)
    action: nope
  - id: c
    use: tool(id=wtool)
  - id: d
    use: tool(id=ptool)
  - id: e
    use: agent(id=pagent)
    action: nope
  - id: fan
    type: paralel
    tasks:
      - { id: kid, use: tool(id=wtool) }
      - { id: kid, use: tool(id=wtool) }
  - id: g
    use: tool(id=wtool)
    on_success: { next: kid }
  - id: h
    use: workflow(id=unparsable)
`,
  // A syntax error after the id line: the id is read from the text.
  "unparsable.yaml": `id: unparsable
tasks:
  - id: x
    type: sleep
    duration: [1s
`,
};

const HIDDEN_EXPECTED = [
  'af.yaml:2:19: config.$model: unknown model "ghost" (the project declares no models)',
  'af.yaml:4:1: bogus: unknown field "bogus"',
  "compozy.yaml:7:14: tools[0].execute: tool module not found: ./no_ptool.ts",
  'compozy.yaml:8:14: tools[0].timeout: expected a duration such as 500ms, 30s, 5m, 1h or 1d, found string "banana"',
  'compozy.yaml:11:23: agents[0].config.$model: unknown model "ghost" (the project declares no models)',
  'compozy.yaml:13:16: agents[0].max_steps: expected an integer, found string "zero"',
  "tf.yaml:2:10: execute: tool module not found: ./no_tf.ts",
  'tf.yaml:3:10: timeout: expected a duration such as 500ms, 30s, 5m, 1h or 1d, found string "banana"',
  "unparsable.yaml:6:1: (root): YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ] (check the indentation of this line and the line above)",
  "w.yaml:4:14: tools[0].execute: tool module not found: ./no_wtool.ts",
  'w.yaml:5:5: tools[0].bogus: unknown field "bogus"',
  'w.yaml:9:16: tasks[0].with.n: does not fit the input of tool "tf": must be number, found string "x"',
  'w.yaml:9:21: tasks[0].with.extra: field "extra" is not in the input of tool "tf"',
  'w.yaml:12:13: tasks[1].action: unknown action "nope" of agent "af" (its actions: act)',
  'w.yaml:19:13: tasks[4].action: unknown action "nope" of agent "pagent" (its actions: go)',
  'w.yaml:21:11: tasks[5].type: expected one of "basic", "router", "parallel", "collection", "composite", "aggregate", "wait", "signal", "sleep", found string "paralel" (did you mean "parallel"?)',
  'w.yaml:24:15: tasks[5].tasks[1].id: duplicate task id "kid" (first declared at line 23)',
];

Deno.test("a schema or syntax error hides no other error of its definition, and makes no 'unknown' line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-hidden-" });
  try {
    for (const [name, text] of Object.entries(HIDDEN_FILES)) await Deno.writeTextFile(join(dir, name), text);
    const { code, stdout, stderr } = await runCli(["validate", "--cwd", dir], { OPENAI_API_KEY: "" });
    // The syntax error's excerpt lines (indented, or starting with ">") are part of its one diagnostic.
    const lines = (stdout + stderr).split("\n").filter((line) => /^[a-z]/.test(line));
    assert.deepEqual(lines.toSorted(), HIDDEN_EXPECTED.toSorted(), `got:\n${lines.join("\n")}`);
    assert.equal(code, 1);
    const checked = (await checkProject(dir, { processEnv: {} })).map((d) => formatDiagnostic(d, dir));
    assert.deepEqual(checked, HIDDEN_EXPECTED);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Finer trust: a sub-field with an error hides only itself, not its siblings; models and MCP servers with
 * schema errors are checked on their valid fields; a mistyped workflow id gets its "did you mean" while a
 * workflow file is unreadable.
 */
const PARTIAL_FILES: Record<string, string> = {
  "compozy.yaml": `name: partial
workflows:
  - source: ./caller.yaml
  - source: ./unparsable.yaml
models:
  - { id: cheap, provider: openai, model: gpt-4o-mini, temperature: hot }
  - { id: fancy, provider: opanai, model: gpt-4o }
mcp:
  - { id: files, script: ./mcp/missing.ts, timeout: soon }
  - { id: docs, url: "ftp://docs", timeout: soon }
agents:
  - id: helper
    config: { $model: nope, temperature: hot }
    instructions: Help.
    actions:
      - { id: go, prompt: 5 }
  - id: spender
    config: { $model: cheap }
    budget: { max_cost: 0.5 }
    instructions: Spend.
    tools: ["mcp(id=fils)"]
`,
  "caller.yaml": `id: caller
tasks:
  - id: one
    use: workflow(id=caler)
  - id: two
    use: workflow(id=lost)
  - id: three
    use: agent(id=helper)
    action: nope
`,
  "unparsable.yaml": "tasks: [ {\n  - id: y\n",
};

const PARTIAL_EXPECTED = [
  'caller.yaml:4:10: tasks[0].use: warning: workflow "caler" is not in the project (did you mean "caller"?); it may be the workflow of ./unparsable.yaml, whose id cannot be read until its YAML syntax error is fixed',
  'caller.yaml:9:13: tasks[2].action: unknown action "nope" of agent "helper" (its actions: go)',
  'compozy.yaml:4:13: workflows[1].source: warning: references to workflows not found in the project ("lost") were not checked: they may name the workflow of ./unparsable.yaml, whose id cannot be read until its YAML syntax error is fixed',
  'compozy.yaml:6:69: models[0].temperature: expected a number, found string "hot"',
  'compozy.yaml:7:28: models[1].provider: expected one of "openai", "anthropic", "google", "groq", "ollama", "openai-compatible", "mock", found string "opanai" (did you mean "openai"?)',
  "compozy.yaml:9:26: mcp[0].script: MCP server script not found: ./mcp/missing.ts",
  'compozy.yaml:9:53: mcp[0].timeout: expected a duration such as 500ms, 30s, 5m, 1h or 1d, found string "soon"',
  'compozy.yaml:10:22: mcp[1].url: expected an http:// or https:// URL, found "ftp://docs"',
  'compozy.yaml:10:45: mcp[1].timeout: expected a duration such as 500ms, 30s, 5m, 1h or 1d, found string "soon"',
  'compozy.yaml:13:23: agents[0].config.$model: unknown model "nope" (models: cheap, fancy)',
  'compozy.yaml:13:42: agents[0].config.temperature: expected a number, found string "hot"',
  "compozy.yaml:16:27: agents[0].actions[0].prompt: expected a string, found integer 5",
  "compozy.yaml:19:25: agents[1].budget.max_cost: needs a price on the agent's model (price: { input_per_million, output_per_million })",
  'compozy.yaml:21:13: agents[1].tools[0]: unknown MCP server "fils": not declared in compozy.yaml\'s mcp: (its MCP servers: files, docs) (did you mean "files"?)',
  "unparsable.yaml:2:3: tasks[0]: YAML syntax error: Block collections are not allowed within flow collections",
];

Deno.test("an error in a sub-field, a model or an MCP server hides none of their other errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-partial-" });
  try {
    for (const [name, text] of Object.entries(PARTIAL_FILES)) await Deno.writeTextFile(join(dir, name), text);
    const { code, stdout, stderr } = await runCli(["validate", "--cwd", dir], { OPENAI_API_KEY: "" });
    const lines = (stdout + stderr).split("\n").filter((line) => /^[a-z]/.test(line));
    assert.deepEqual(lines.toSorted(), PARTIAL_EXPECTED.toSorted(), `got:\n${lines.join("\n")}`);
    assert.equal(code, 1);
    const checked = (await checkProject(dir, { processEnv: {} })).map((d) => formatDiagnostic(d, dir));
    assert.deepEqual(checked, PARTIAL_EXPECTED);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A task with a schema error of its own still has the references it makes from its other fields checked
 * (`use`, `action`, `on_success.next`, `on_error.next`): before, `wiht: 1` beside `use: tool(id=nosuch)` said
 * only the unknown field, and the unknown tool came at the next run. A field with an error of its own makes
 * no second line, and an agent task whose `action` has an error is not told it lacks one.
 */
const BROKEN_TASK_FILES: Record<string, string> = {
  "compozy.yaml": `name: broken-tasks
workflows:
  - source: ./w.yaml
agents:
  - id: helper
    config: { $model: m }
    instructions: Help.
    actions:
      - { id: go, prompt: Go. }
models:
  - { id: m, provider: mock, model: m }
`,
  "t.ts": "export default () => ({});\n",
  "w.yaml": `id: w
tools:
  - { id: t, execute: ./t.ts }
tasks:
  - id: typo
    use: tool(id=nosuch)
    wiht: { x: 1 }
    on_success: { next: nowhere }
    on_error: { next: ok }
  - id: agent_task
    use: agent(id=helper)
    action: nope
    retry: { max_attempts: 0 }
  - id: bad_action
    use: agent(id=helper)
    action: 5
  - id: bad_use
    use: 7
    on_error: { next: gone }
  - id: file_task
    use: tool(file=./missing.yaml)
    timout: 1s
  - id: ok
    use: tool(id=t)
`,
};

const BROKEN_TASK_EXPECTED = [
  'w.yaml:6:10: tasks[0].use: unknown tool "nosuch": not declared in this workflow or the project',
  'w.yaml:7:5: tasks[0].wiht: unknown field "wiht" (did you mean "with"?)',
  'w.yaml:8:25: tasks[0].on_success.next: unknown task "nowhere" in workflow "w"',
  'w.yaml:12:13: tasks[1].action: unknown action "nope" of agent "helper" (its actions: go)',
  "w.yaml:13:28: tasks[1].retry.max_attempts: expected a number >= 1, found integer 0",
  "w.yaml:16:13: tasks[2].action: expected a string, found integer 5",
  "w.yaml:18:10: tasks[3].use: expected a string, found integer 7",
  'w.yaml:19:23: tasks[3].on_error.next: unknown task "gone" in workflow "w"',
  "w.yaml:21:10: tasks[4].use: tool file not found: ./missing.yaml",
  'w.yaml:22:5: tasks[4].timout: unknown field "timout" (did you mean "timeout"?)',
];

Deno.test("a task with a schema error still has the references of its other fields checked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-broken-tasks-" });
  try {
    for (const [name, text] of Object.entries(BROKEN_TASK_FILES)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    const lines = (await checkProject(dir, { processEnv: {} })).map((d) => formatDiagnostic(d, dir));
    assert.deepEqual(lines, BROKEN_TASK_EXPECTED, `got:\n${lines.join("\n")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
