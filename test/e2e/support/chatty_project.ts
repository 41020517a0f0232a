/**
 * The project the log-page tests run: workflow `chatty` calls tool `chat` once per item of its input's
 * `items`, and the tool prints lines (its source, `chatSource`, says how many and how fast).
 */
import { join } from "node:path";

/** Writes the project into a new temp folder and returns the folder. */
export async function writeChattyProject(name: string, chatSource: string): Promise<string> {
  const files: Record<string, string> = {
    "compozy.yaml": `name: ${name}\nworkflows:\n  - source: ./wf.yaml\n`,
    "wf.yaml": `id: chatty
tools:
  - id: chat
    execute: ./chat.ts
tasks:
  - id: each
    type: collection
    items: "{{ .workflow.input.items }}"
    task:
      id: say
      use: tool(id=chat)
      with: { item: "{{ .item }}" }
`,
    "chat.ts": chatSource,
  };
  const dir = await Deno.makeTempDir({ prefix: `compozy-${name}-` });
  for (const [file, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, file), text);
  return dir;
}
