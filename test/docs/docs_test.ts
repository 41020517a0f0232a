/**
 * The docs a user follows hold together: every relative link in `docs/` and the README leads to a file that
 * exists (and, with `#anchor`, to a heading in it), and every `compozy …` command in getting-started.md is a
 * command the CLI has, with flags it has; a `compozy dev --run` of an example gives an input its workflow takes.
 */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 as Ajv } from "ajv/dist/2020.js";
import { parse as parseYaml } from "yaml";
import { commandTable } from "../../cli/main.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DOCS = [
  join(ROOT, "README.md"),
  ...[...Deno.readDirSync(join(ROOT, "docs"))].filter((e) => e.name.endsWith(".md")).map((e) =>
    join(ROOT, "docs", e.name)
  ),
];

/** Markdown outside fenced code blocks. */
function unfenced(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, "");
}

/** Markdown outside code: fenced blocks and inline code spans are not links. */
function prose(text: string): string {
  return unfenced(text).replace(/`[^`\n]*`/g, "");
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/`/g, "").replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

function anchors(text: string): Set<string> {
  // A heading's inline code is part of its anchor ("The `compozy` binary" → the-compozy-binary).
  return new Set([...unfenced(text).matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));
}

Deno.test("every relative link in docs/ and README resolves", () => {
  const broken: string[] = [];
  for (const file of DOCS) {
    const text = Deno.readTextFileSync(file);
    for (const [, target] of prose(text).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      const [path, anchor] = target.split("#");
      const resolved = path ? join(dirname(file), decodeURIComponent(path)) : file;
      const where = `${relative(ROOT, file)} → ${target}`;
      let stat: Deno.FileInfo;
      try {
        stat = Deno.statSync(resolved);
      } catch {
        broken.push(`${where}: no such file`);
        continue;
      }
      if (
        anchor && stat.isFile && resolved.endsWith(".md") &&
        !anchors(Deno.readTextFileSync(resolved)).has(anchor)
      ) {
        broken.push(`${where}: no heading #${anchor}`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

/** `compozy …` commands of a doc: lines of shell blocks and inline code spans, placeholders kept. */
function commandsIn(text: string): string[] {
  const blocks = [...text.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)].flatMap((m) =>
    m[1].split("\n").map((line) => line.replace(/#.*$/, "").trim())
  );
  const spans = [...text.matchAll(/`(compozy [^`\n]+)`/g)].map((m) => m[1]);
  return [...blocks, ...spans].filter((line) => line.startsWith("compozy "));
}

/** The command path and the flags a command line uses, given the CLI's command paths. */
function parse(line: string, table: Map<string, string[]>): { path?: string; flags: string[] } {
  const words = line.split(/\s+/).slice(1);
  let path: string | undefined;
  for (let n = words.length; n > 0 && !path; n--) {
    const candidate = words.slice(0, n).join(" ");
    if (table.has(candidate)) path = candidate;
  }
  const flags = words.filter((w) => /^--[a-z]/.test(w)).map((w) => w.split("=")[0]);
  return { path, flags };
}

/** `executions` alone is a group, not a command: a line that stops there named an unknown subcommand. */
function isGroup(path: string, table: Map<string, string[]>): boolean {
  return [...table.keys()].some((key) => key.startsWith(`${path} `));
}

Deno.test("every command in docs/getting-started.md is one the CLI has, with its flags", () => {
  const table = commandTable();
  const text = Deno.readTextFileSync(join(ROOT, "docs/getting-started.md"));
  const commands = commandsIn(text);
  assert.ok(commands.length >= 10, `found only ${commands.length} commands`);
  const problems: string[] = [];
  for (const line of commands) {
    const { path, flags } = parse(line, table);
    if (!path || isGroup(path, table)) {
      problems.push(`${line}: no such command`);
      continue;
    }
    for (const flag of flags) {
      if (!table.get(path)!.includes(flag)) problems.push(`${line}: '${path}' has no ${flag}`);
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("the docs check catches what it is for", () => {
  const table = commandTable();
  assert.equal(parse("compozy executions rerun <exec_id> --input '{}'", table).path, "executions rerun");
  assert.ok(isGroup(parse("compozy executions frobnicate x", table).path!, table), "an unknown subcommand");
  assert.ok(!isGroup("executions rerun", table));
  assert.ok(!table.get("dev")!.includes("--bogus"));
  assert.equal(slug("Live events (SSE)"), "live-events-sse");
  assert.equal(slug("The `mock` provider"), "the-mock-provider");
  assert.ok(anchors("## The `mock` provider\n```\n# not a heading\n```\n").has("the-mock-provider"));
  assert.ok(!anchors("```\n# not a heading\n```\n").has("not-a-heading"));
});

Deno.test("every `compozy dev --cwd examples/<x> --run <workflow> --input …` in docs/ starts its workflow", () => {
  const problems: string[] = [];
  let seen = 0;
  for (const file of DOCS) {
    // A command may go on over lines ending in a backslash.
    const text = Deno.readTextFileSync(file).replace(/\\\n\s*/g, "");
    for (const m of text.matchAll(/compozy dev --cwd (examples\/[\w-]+) --run ([\w-]+) --input '([^']*)'/g)) {
      seen++;
      const [, project, workflow, input] = m;
      const where = `${relative(ROOT, file)}: ${project} --run ${workflow}`;
      const schema = exampleInputSchema(join(ROOT, project), workflow);
      if (!schema) {
        problems.push(`${where}: no workflow '${workflow}' with an input schema`);
        continue;
      }
      const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
      if (!validate(JSON.parse(input))) {
        problems.push(`${where}: input ${input} fails: ${JSON.stringify(validate.errors)}`);
      }
    }
  }
  assert.ok(seen >= 1, "no such command found");
  assert.deepEqual(problems, []);
});

/** The `config.input` schema of workflow `id` among the project's workflow files. */
function exampleInputSchema(project: string, id: string): Record<string, unknown> | undefined {
  const config = parseYaml(Deno.readTextFileSync(join(project, "compozy.yaml"))) as {
    workflows?: { source: string }[];
  };
  for (const { source } of config.workflows ?? []) {
    const workflow = parseYaml(Deno.readTextFileSync(join(project, source))) as {
      id?: string;
      config?: { input?: Record<string, unknown> };
    };
    if (workflow.id === id) return workflow.config?.input;
  }
  return undefined;
}
