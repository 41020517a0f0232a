/**
 * What loading a large project costs: a generated project of 200 workflows × 20 tasks (tools, routers,
 * parallel and collection tasks, templates reading earlier tasks) is read, validated against the JSON
 * Schemas and checked by `loadProject`. The first load includes compiling the schema validators; the
 * others show the steady cost (the template cache is warm then, as in a long-running server that reloads).
 *
 * Run: `deno run -A bench/config_bench.ts`
 *
 * @module
 */

import { join } from "node:path";
import { loadProject } from "../engine/domain/project/mod.ts";
import { percentile, roundMs } from "./_stats.ts";
import { formatTable } from "./_table.ts";

const WORKFLOWS = 200;
const TASKS_PER_WORKFLOW = 20;
const RUNS = 5;

/** Load times of the generated project: the first load, then the median and worst of the others. */
export async function benchConfig(): Promise<Array<Record<string, string | number>>> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-config-bench-" });
  try {
    const size = await generateProject(dir);
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      const project = await loadProject(dir, { processEnv: {} });
      samples.push(performance.now() - started);
      if (project.workflows.size !== WORKFLOWS) throw new Error(`loaded ${project.workflows.size} workflows`);
    }
    const [first, ...rest] = samples;
    return [{
      project: `${WORKFLOWS} workflows × ${TASKS_PER_WORKFLOW} tasks`,
      files: size.files,
      "YAML KB": Math.round(size.bytes / 1024),
      "first load ms": roundMs(first),
      "p50 ms": roundMs(percentile(rest, 50)),
      "max ms": roundMs(Math.max(...rest)),
      "µs/task": Math.round((percentile(rest, 50) * 1000) / (WORKFLOWS * TASKS_PER_WORKFLOW)),
    }];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes the project; returns how many YAML files and bytes it has. */
async function generateProject(dir: string): Promise<{ files: number; bytes: number }> {
  await Deno.mkdir(join(dir, "workflows"));
  await Deno.writeTextFile(join(dir, "tools.ts"), "export default (input: unknown) => ({ input });\n");
  const project = [
    "name: bench",
    "env: { LEVEL: bench }",
    "tools:",
    "  - { id: shared, execute: ./tools.ts, timeout: 5s }",
    "workflows:",
    ...Array.from({ length: WORKFLOWS }, (_, w) => `  - source: ./workflows/w${w}.yaml`),
  ].join("\n") + "\n";
  let bytes = project.length;
  await Deno.writeTextFile(join(dir, "compozy.yaml"), project);
  await Promise.all(Array.from({ length: WORKFLOWS }, async (_, w) => {
    const text = workflowYaml(w);
    bytes += text.length;
    await Deno.writeTextFile(join(dir, "workflows", `w${w}.yaml`), text);
  }));
  return { files: WORKFLOWS + 1, bytes };
}

/**
 * Twenty tasks: a run of tool tasks reading their predecessor, with a router, a parallel and a collection
 * task among them, and a sub-workflow call to the next workflow (no cycle: the last calls nothing).
 */
function workflowYaml(w: number): string {
  const lines = [
    `id: w${w}`,
    "config:",
    "  input: { type: object, properties: { city: { type: string } } }",
    "tools:",
    "  - id: local",
    "    execute: ../tools.ts",
    "    input: { type: object }",
    "tasks:",
  ];
  for (let t = 0; t < TASKS_PER_WORKFLOW; t++) {
    const prev = t === 0 ? ".workflow.input.city" : `.tasks.t${t - 1}.output`;
    if (t === 5) {
      lines.push(
        `  - id: t${t}`,
        "    type: router",
        `    condition: "{{ ${prev} | default(\\"a\\") }}"`,
        `    routes: { a: t${t + 1}, b: t${t + 2} }`,
        `    default: t${t + 1}`,
      );
    } else if (t === 10) {
      lines.push(
        `  - id: t${t}`,
        "    type: parallel",
        "    tasks:",
        `      - { id: t${t}-a, use: tool(id=local), with: { v: "{{ ${prev} }}" } }`,
        `      - { id: t${t}-b, use: tool(id=shared), with: { v: "{{ len(.workflow.input.city) > 3 }}" } }`,
      );
    } else if (t === 15) {
      lines.push(
        `  - id: t${t}`,
        "    type: collection",
        `    items: "{{ .tasks.t${t - 1}.output.list | default(.workflow.input.cities) }}"`,
        "    mode: sequential",
        `    task: { id: t${t}-item, use: tool(id=local), with: { item: "{{ .item }}", at: "{{ .index }}" } }`,
      );
    } else if (t === TASKS_PER_WORKFLOW - 1 && w + 1 < WORKFLOWS) {
      lines.push(`  - { id: t${t}, use: workflow(id=w${w + 1}), with: { city: "{{ ${prev} }}" } }`);
    } else {
      lines.push(
        `  - id: t${t}`,
        `    use: tool(id=${t % 2 ? "local" : "shared"})`,
        `    with: { value: "{{ ${prev} }}", level: "{{ .env.LEVEL }}" }`,
        "    retry: { max_attempts: 2, backoff: { initial: 1s } }",
      );
    }
  }
  lines.push("outputs:", `  last: "{{ .tasks.t${TASKS_PER_WORKFLOW - 1}.output }}"`);
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  console.log(formatTable("Configuration loading", await benchConfig()));
}
