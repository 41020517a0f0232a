/**
 * Project bundles: one JSON file holding a project's YAML files and each tool module bundled with
 * `deno bundle` (so imports travel with it, and nothing is fetched when it runs). `compozy build` writes
 * one, `compozy deploy` sends it, `compozy start --bundle` and the deploy route unpack it into
 * `.compozy/deployments/<sha256>/` and load the project from there.
 *
 * Not bundled: `.env` files (secrets stay on the machine that runs the bundle) and files a tool reads at run
 * time (its `permissions.read` paths).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
import type { Project } from "../engine/domain/project/types.ts";
import { lookupUse } from "../engine/domain/project/resolve_use.ts";
import { BundleBody } from "../server/schemas.ts";
import type { DeployBundle } from "../server/routes/context.ts";
import { CliError } from "./cli_error.ts";

export const BUNDLE_FORMAT = "compozy-bundle/1";
export const BUNDLE_SUFFIX = ".compozy.json";

/** Directories never bundled: run-time state, build output, dependencies, VCS. */
const SKIPPED_DIRS = new Set([".compozy", "dist", "node_modules", ".git"]);

/** Builds the bundle of a loaded project. */
export async function buildBundle(project: Project): Promise<DeployBundle> {
  const files: Record<string, string> = {};
  for await (const path of yamlFiles(project.root, project.root)) {
    files[relative(project.root, path)] = await Deno.readTextFile(path);
  }
  for (const modulePath of toolModules(project)) {
    const rel = relative(project.root, modulePath);
    if (rel.startsWith("..") || isAbsolute(rel)) {
      throw new CliError(`Cannot bundle tool module ${modulePath}: it is outside the project directory`);
    }
    files[rel] = await denoBundle(modulePath);
  }
  return {
    format: BUNDLE_FORMAT,
    project: project.config.name,
    created_at: new Date().toISOString(),
    files,
  };
}

/** SHA-256 of a bundle's files: the deployment id, the same for the same content. */
export function bundleDigest(bundle: DeployBundle): string {
  const hash = createHash("sha256");
  for (const path of Object.keys(bundle.files).sort()) hash.update(`${path}\0${bundle.files[path]}\0`);
  return hash.digest("hex");
}

/** Reads and checks a bundle file. */
export async function readBundleFile(path: string): Promise<DeployBundle> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new CliError(`Cannot read bundle ${path}: ${(e as Error).message}`);
  }
  const result = BundleBody.safeParse(parsed);
  if (!result.success) {
    throw new CliError(`${path} is not a Compozy bundle: ${result.error.issues[0].message}`);
  }
  return result.data;
}

/**
 * Writes the bundle's files under `<baseDir>/deployments/<digest>/` (once: the same content is unpacked
 * once) and returns that directory. Paths that would leave it are refused.
 */
export async function unpackBundle(
  bundle: DeployBundle,
  baseDir: string,
): Promise<{ dir: string; digest: string }> {
  const digest = bundleDigest(bundle);
  const dir = resolve(baseDir, "deployments", digest);
  const marker = join(dir, ".complete");
  try {
    await Deno.stat(marker);
    return { dir, digest };
  } catch {
    // Not unpacked yet (or a previous unpack was interrupted): write it all.
  }
  for (const [path, text] of Object.entries(bundle.files)) {
    const target = resolve(dir, normalize(path));
    if (isAbsolute(path) || !target.startsWith(dir + sep)) {
      throw new CliError(
        `Refusing bundle file '${path}': it would be written outside the deployment directory`,
      );
    }
    await Deno.mkdir(dirname(target), { recursive: true });
    await Deno.writeTextFile(target, text);
  }
  await Deno.writeTextFile(marker, new Date().toISOString());
  return { dir, digest };
}

async function* yamlFiles(dir: string, root: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      if (SKIPPED_DIRS.has(entry.name) || entry.name.startsWith(".")) continue;
      yield* yamlFiles(path, root);
    } else if (entry.isFile && /\.ya?ml$/.test(entry.name)) {
      yield path;
    }
  }
}

/** Every tool module the project can run: declared tools and `tool(file=…)` references. */
function toolModules(project: Project): Set<string> {
  const modules = new Set<string>();
  for (const tool of project.tools.values()) modules.add(tool.executePath);
  for (const workflow of project.workflows.values()) {
    for (const tool of workflow.tools.values()) modules.add(tool.executePath);
    for (const task of workflow.tasks.values()) {
      const use = (task as { use?: string }).use;
      const resolved = use ? lookupUse(project, workflow, use) : undefined;
      if (resolved?.kind === "tool") modules.add(resolved.tool.executePath);
    }
  }
  return modules;
}

/** One module and its imports as one ES module, with `deno bundle` (works offline once deps are cached). */
async function denoBundle(modulePath: string): Promise<string> {
  const out = await Deno.makeTempFile({ suffix: ".js" });
  try {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "deno", "-o", out, modulePath],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new CliError(
        `deno bundle failed for ${modulePath}`,
        new TextDecoder().decode(stderr).trim().split("\n").slice(-10),
      );
    }
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(out).catch(() => {});
  }
}
