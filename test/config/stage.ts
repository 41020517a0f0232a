/**
 * Test helper: copies a project directory to a temporary one, adding a default `compozy.yaml` listing
 * `workflow.yaml` when the project has none (so a corpus case can be a single workflow file).
 */

import { join } from "node:path";

export const DEFAULT_PROJECT = "name: corpus\nworkflows:\n  - source: ./workflow.yaml\n";

export async function stageProject(from: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-config-" });
  await copyDir(from, dir);
  const hasProject = await exists(join(from, "compozy.yaml")) || await exists(join(from, ".no-project"));
  if (!hasProject) await Deno.writeTextFile(join(dir, "compozy.yaml"), DEFAULT_PROJECT);
  return dir;
}

async function copyDir(from: string, to: string): Promise<void> {
  for await (const entry of Deno.readDir(from)) {
    if (entry.name === "expected.txt" || entry.name === ".no-project") continue;
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isDirectory) {
      await Deno.mkdir(dst);
      await copyDir(src, dst);
    } else {
      await Deno.copyFile(src, dst);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
