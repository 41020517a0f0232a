/**
 * `compozy init [dir]`: scaffolds a project that runs at once with `compozy dev`: one workflow with a tool
 * and an agent, a webhook trigger, `.env.example`, and the JSON Schemas in `schemas/` for editor hints. The
 * agent runs on the `mock` provider (a scripted model that calls the tool for real), so the project needs
 * no key; one line switches it to OpenAI.
 *
 * @module
 */
import { basename, join, relative, resolve } from "node:path";
import { generateSchemas, serializeSchema } from "../../pkg/schemagen/mod.ts";
import { cliCommand } from "../invocation.ts";
import { CliError } from "../cli_error.ts";

export interface InitOptions {
  cwd: string;
  dir?: string;
}

export async function runInit(options: InitOptions): Promise<number> {
  const root = resolve(options.cwd, options.dir ?? ".");
  const name = projectName(basename(root));
  try {
    await Deno.stat(join(root, "compozy.yaml"));
    throw new CliError(`${join(root, "compozy.yaml")} already exists; init writes new projects only`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const files: Record<string, string> = {
    "compozy.yaml": projectFile(name),
    "workflows/greeter.yaml": WORKFLOW,
    "workflows/tools/format_greeting.ts": TOOL,
    ".env.example": ENV_EXAMPLE,
    ".gitignore": ".env\n.compozy/\ndist/\n",
  };
  for (const [file, schema] of Object.entries(generateSchemas())) {
    files[`schemas/${file}`] = serializeSchema(schema);
  }
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, path), text, { createNew: true });
  }
  const near = relative(Deno.cwd(), root);
  const where = near.startsWith("..") ? root : near || ".";
  console.log(`created project '${name}' in ${where}`);
  console.log("");
  console.log("next:");
  console.log(`  ${cliCommand()} dev --cwd ${where} --watch`);
  console.log(
    `  curl -X POST http://127.0.0.1:3001/api/webhooks/greet -H 'content-type: application/json' -d '{"name":"Ada"}'`,
  );
  console.log(
    `  cp ${join(where, ".env.example")} ${
      join(where, ".env")
    }   # for a real model: see the comments in compozy.yaml`,
  );
  return 0;
}

/** A valid project name from a directory name: lower case, `[a-z0-9-]`, starting with a letter or digit. */
function projectName(dir: string): string {
  const name = dir.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return /^[a-z0-9]/.test(name) ? name : `project-${name || "new"}`.replace(/-+$/, "");
}

function projectFile(name: string): string {
  return `# yaml-language-server: $schema=./schemas/compozy.json
name: ${name}
version: 0.1.0
description: Greets someone and writes them a short poem
workflows:
  - source: ./workflows/greeter.yaml
models:
  # A scripted model: no key, no network. It asks for the greeting tool (which really runs in the sandbox),
  # then replies with the text below. Replies are listed per action; see the mock provider in the docs.
  - id: offline
    provider: mock
    model: scripted
    mock:
      replies:
        poem:
          - tool_calls:
              - tool: format_greeting
                input: { name: "{{ .workflow.input.name }}" }
          - text: "A scripted poem for {{ .workflow.input.name }}: set OPENAI_API_KEY and use $model: openai for a real one."
  # With a key: set OPENAI_API_KEY in .env (copy .env.example), uncomment this model and use
  # \`$model: openai\` on the agent in workflows/greeter.yaml.
  # - id: openai
  #   provider: openai
  #   model: gpt-4o-mini
  #   api_key: "{{ .env.OPENAI_API_KEY }}"
`;
}

const WORKFLOW = `# yaml-language-server: $schema=../schemas/workflow.json
id: greeter
version: 0.1.0
description: A tool formats a greeting; an agent writes a poem about it
config:
  input:
    type: object
    properties:
      name: { type: string, minLength: 1 }
    required: [name]
  timeout: 2m
triggers:
  - type: webhook
    config:
      url: /greet # POST /api/webhooks/greet with {"name": "Ada"}
tools:
  - id: format_greeting
    execute: ./tools/format_greeting.ts
    description: Builds a greeting for a name
    input: { type: object, properties: { name: { type: string } }, required: [name] }
    output: { type: object, properties: { greeting: { type: string } }, required: [greeting] }
    timeout: 5s
agents:
  - id: poet
    config: { $model: offline, temperature: 0.7, max_tokens: 200 } # $model: openai once OPENAI_API_KEY is set
    instructions: You write short, warm poems of four lines. Use the greeting tool for the first line.
    tools: [format_greeting]
    actions:
      - id: poem
        prompt: "Write a four-line poem that starts with: {{ .input.greeting }}"
tasks:
  - id: format
    use: tool(id=format_greeting)
    with: { name: "{{ .workflow.input.name }}" }
  - id: poem
    use: agent(id=poet)
    action: poem
    with: { greeting: "{{ .tasks.format.output.greeting }}" }
    final: true
outputs:
  greeting: "{{ .tasks.format.output.greeting }}"
  poem: "{{ .tasks.poem.output.text }}"
`;

const TOOL = `/**
 * A tool is a TypeScript module whose default export takes the task's input (checked against the tool's
 * \`input\` schema) and returns its output. It runs in a sandboxed worker with no permissions unless the
 * tool's \`permissions\` grant some.
 */
export default function formatGreeting(input: { name: string }): { greeting: string } {
  return { greeting: \`Hello, \${input.name}!\` };
}
`;

const ENV_EXAMPLE = `# Copy to .env and fill in; .env is read from beside compozy.yaml and never bundled.
OPENAI_API_KEY=
`;
