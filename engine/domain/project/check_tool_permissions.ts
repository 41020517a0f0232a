/**
 * Checks of tool `permissions:` that can be known before anything runs, each reported at the grant's line:
 * - a `write` grant may not cover a tool module of the project (the tool could rewrite another tool, whose
 *   next sandbox would run the new code with that tool's grants and env); `write: true` covers them all;
 * - a `read` or `write` grant may not cover the project's `.compozy/` store, `.env` files (and `env_file`)
 *   or `compozy.yaml`; `read: true` is reported as a warning, since the sandbox still denies those paths;
 * - a granted folder may not hold a symlink leading out of it (the sandbox checks this again at start).
 *
 * The sandbox enforces the same rules when it starts (pkg/runtime/grant_paths.ts), where it can: it does not
 * know the other tools of the project, so the tool-module rule is enforced here only.
 *
 * @module
 */

import { dirname, relative, resolve } from "node:path";
import {
  covers,
  projectRoots,
  realPathOrSelf,
  resolveGrants,
  rootsProtectedPaths,
} from "../../../pkg/runtime/grant_paths.ts";
import { checkToolModule } from "../../../pkg/runtime/import_policy.ts";
import { normalizePermissions } from "../../../pkg/runtime/permissions.ts";
import { ToolFailure } from "../../../pkg/runtime/tool_failure.ts";
import type { ToolDefinition } from "../tool/definition.ts";
import type { Analysis, DiagnosticList, Site } from "./analysis.ts";
import { isToolDefinition } from "./resolve_use.ts";

/** `read` or `write`, or for an entry the sandbox cannot express, the permission it is in. */
type PathKind = string;

export async function checkToolPermissions(analysis: Analysis, diagnostics: DiagnosticList): Promise<void> {
  const tools = [...analysis.sites.keys()].filter(isToolDefinition);
  const writers = tools.filter((t) => Array.isArray(t.permissions?.write) && t.permissions.write.length > 0);
  const modules = writers.length ? await toolModuleFiles(tools) : [];
  const { root, config } = analysis.project;
  // The project's own (and, for a deployment, the project it was unpacked in), in case a tool lives outside
  // its folder, and the env file it names.
  const envFile = config.env_file === undefined ? [] : [resolve(root, config.env_file)];
  const neverGranted = [...await rootsProtectedPaths(await projectRoots(root)), ...envFile];
  for (const tool of tools) {
    const site = analysis.sites.get(tool)!;
    const report = (kind: PathKind, index: number | undefined, message: string) =>
      diagnostics.error(site.source, grantPath(site, kind, index), message);
    const permissions = tool.permissions;
    if (!permissions) continue;
    if (permissions.write === true) {
      report(
        "write",
        undefined,
        "write: true would let this tool rewrite every tool of the project; list the folders it writes",
      );
    }
    if (permissions.read === true) {
      diagnostics.warning(
        site.source,
        grantPath(site, "read", undefined),
        "read: true lets this tool read every file this machine's user can, except the project's .compozy/, .env and compozy.yaml",
      );
    }
    await checkWritesMissModules(tool, modules, report);
    await checkGrantsOnDisk(tool, neverGranted, report);
  }
}

/** The YAML path of a grant, or of one entry of it. */
function grantPath(site: Site, kind: PathKind, index: number | undefined) {
  return [...site.path, "permissions", kind, ...(index === undefined ? [] : [index])];
}

/**
 * Every module file of every tool, with real paths: the modules `deno info` lists, or the tool's own file
 * when its graph cannot be read (the import check reports that failure itself, at the tool's `execute`).
 */
async function toolModuleFiles(tools: ToolDefinition[]): Promise<string[]> {
  const files = new Set<string>();
  await Promise.all(tools.map(async (tool) => {
    let graph: readonly string[] = [tool.executePath];
    try {
      graph = (await checkToolModule(tool.executePath)).files;
    } catch (e) {
      if (!(e instanceof ToolFailure)) throw e;
    }
    for (const file of graph) files.add(file).add(await realPathOrSelf(file));
  }));
  return [...files].sort();
}

async function checkWritesMissModules(
  tool: ToolDefinition,
  modules: readonly string[],
  report: (kind: PathKind, index: number, message: string) => void,
): Promise<void> {
  const writes = tool.permissions?.write;
  if (!Array.isArray(writes)) return;
  const toolDir = dirname(tool.executePath);
  for (const [i, entry] of writes.entries()) {
    const path = resolve(toolDir, entry);
    const real = await realPathOrSelf(path);
    const hit = modules.find((m) => covers(path, m) || covers(real, m));
    if (hit !== undefined) {
      report(
        "write",
        i,
        `write grant "${entry}" covers the tool module ${
          relative(toolDir, hit)
        }: a tool may not rewrite a tool`,
      );
    }
  }
}

/** The sandbox's own start-up check of grants (protected files, escaping symlinks), reported at the entry. */
async function checkGrantsOnDisk(
  tool: ToolDefinition,
  alsoProtected: readonly string[],
  report: (kind: PathKind, index: number | undefined, message: string) => void,
): Promise<void> {
  const toolDir = dirname(tool.executePath);
  try {
    await resolveGrants(normalizePermissions(tool.permissions, toolDir), toolDir, alsoProtected);
  } catch (e) {
    if (!(e instanceof ToolFailure)) throw e;
    const { permission, entry } = (e.details ?? {}) as { permission?: string; entry?: string };
    const kind: PathKind = permission ?? "read";
    const entries = tool.permissions?.[kind as keyof typeof tool.permissions];
    const index = Array.isArray(entries) ? entries.findIndex((x) => resolve(toolDir, x) === entry) : -1;
    report(kind, index === -1 ? undefined : index, e.message);
  }
}
