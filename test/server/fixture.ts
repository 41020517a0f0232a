/**
 * A small project on disk for route tests, loaded with the real loader: a `greet` workflow with an input
 * schema, a signed webhook with an input mapping and an unsigned one, and a second workflow that declares a
 * tool with the same id (for the ambiguity rule of definition lookups).
 */
import { join } from "node:path";
import { loadProject } from "../../engine/domain/project/mod.ts";
import type { Project } from "../../engine/domain/project/types.ts";

export const WEBHOOK_SECRET = "s3cret-for-tests";

const FILES: Record<string, string> = {
  "compozy.yaml": `name: route-tests
version: 0.1.0
workflows:
  - source: ./workflows/greet.yaml
  - source: ./workflows/other.yaml
env:
  HOOK_SECRET: ${WEBHOOK_SECRET}
`,
  "workflows/greet.yaml": `id: greet
description: Greets
config:
  input:
    type: object
    properties: { name: { type: string, minLength: 1 } }
    required: [name]
triggers:
  - type: webhook
    config:
      url: /greet
      secret: "{{ .env.HOOK_SECRET }}"
      input: { name: "{{ .payload.user.name }}" }
  - type: webhook
    config: { url: /hooks/open }
tools:
  - id: say
    execute: ./tools/say.ts
    env: { TOKEN: literal-secret }
tasks:
  - id: hello
    use: tool(id=say)
    with: { name: "{{ .workflow.input.name }}" }
`,
  "workflows/other.yaml": `id: other
triggers:
  - type: webhook
    config: { url: /broken, secret: "{{ .env.NOT_SET_ANYWHERE }}" }
tools:
  - id: say
    execute: ./tools/say.ts
tasks:
  - id: only
    use: tool(id=say)
`,
  "workflows/tools/say.ts": `export default function run(input: { name?: string }) {
  return { text: "hi " + (input.name ?? "") };
}
`,
};

export async function fixtureProject(): Promise<{ project: Project; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-routes-" });
  for (const [path, text] of Object.entries(FILES)) {
    await Deno.mkdir(join(dir, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, path), text);
  }
  return { project: await loadProject(dir, { processEnv: {} }), dir };
}
