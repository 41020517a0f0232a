/**
 * Checks of tool `permissions:` that can be known before anything runs, each reported at the grant's line:
 * - a `write` grant may not cover a tool module of the project (the tool could rewrite another tool, whose
 *   next sandbox would run the new code with that tool's grants and env); `write: true` covers them all;
 * - a `read` or `write` grant may not cover the project's `.compozy/` store, `.env*` files, its `env_file`
 *   or `compozy.yaml`; `read: true` is reported as a warning, since the sandbox still denies those paths
 *   (grant_paths.ts reads `env_file` from compozy.yaml too: red team 7 R3);
 * - a granted folder may not hold a symlink leading out of it (the sandbox checks this again at start);
 * - a `write` grant may not cover a YAML file the project loader reads (red team 4 F6: a tool rewrote the
 *   `permissions:` and `env:` of its own or another tool, in force at the next load).
 *
 * The `permissions` of an MCP `script:` server get the same checks, reported at `mcp[i].permissions` in
 * compozy.yaml (red team 4 F4: none were made); its relative entries start at compozy.yaml's folder, and its
 * own module counts as a tool module.
 *
 * No `write` grant may reach the files an MCP `command:` server runs either (pkg/runtime/mcp/
 * command_server_files.ts says which they are): it runs unsandboxed, so a tool that rewrote them would run as
 * the server, with the runtime's rights and the server's env, at its next start.
 *
 * The sandbox enforces the same rules when it starts (pkg/runtime/grant_paths.ts), where it can: it does not
 * know the other tools of the project, so the tool-module rule is enforced here only.
 *
 * @module
 */

import { basename, dirname, relative, resolve } from "node:path";
import {
  covers,
  coversOrInside,
  GIT_FOLDER_WHY,
  projectGitFolders,
  projectRoots,
  reachesProgramFolder,
  realPathOrSelf,
  resolveGrants,
  rootsProtectedPaths,
  withRealPaths,
} from "../../../pkg/runtime/grant_paths.ts";
import { checkToolModule, scriptModuleFiles } from "../../../pkg/runtime/import_policy.ts";
import {
  type CommandServerFiles,
  commandServerFiles,
} from "../../../pkg/runtime/mcp/command_server_files.ts";
import {
  RUNTIME_CODE_WHY,
  RUNTIME_PATH_LINK_WHY,
  RUNTIME_PATH_WHY,
  runtimeCode,
} from "../../../pkg/runtime/runtime_code.ts";
import { normalizePermissions } from "../../../pkg/runtime/permissions.ts";
import { ToolFailure } from "../../../pkg/runtime/tool_failure.ts";
import type { ToolPermissions } from "../../../pkg/runtime/permissions.ts";
import type { McpServerConfig } from "../mcp/schema.ts";
import type { ToolDefinition } from "../tool/definition.ts";
import { type Analysis, type DiagnosticList, type Site, trusts } from "./analysis.ts";
import { isToolDefinition } from "./resolve_use.ts";

/** `read` or `write`, or for an entry the sandbox cannot express, the permission it is in. */
type PathKind = string;

/** Whose grants are checked: where relative entries start, and where its module lies. */
interface Grantee {
  permissions: ToolPermissions;
  /** Relative entries resolve against this folder. */
  base: string;
  /** The module's folder: the projects above it are protected. */
  moduleDir: string;
  /** "tool" or "MCP server", for messages. */
  what: string;
  /** The project's `env_file` as compozy.yaml names it, for messages. */
  envFile: string | undefined;
}

type Report = (kind: PathKind, index: number | undefined, message: string) => void;

export async function checkToolPermissions(analysis: Analysis, diagnostics: DiagnosticList): Promise<void> {
  // Grants resolve against the tool's module: without a valid `execute` there is none to resolve against.
  const tools = [...analysis.sites.keys()].filter(isToolDefinition).filter((t) =>
    trusts(analysis, t, "execute")
  );
  const { root, config } = analysis.project;
  // The servers as indexed: one with schema errors holds only its valid values, so a bad grant (reported by
  // the schema) is not judged again here.
  const scriptServers = [...analysis.project.mcp.values()].filter((server) => server.script !== undefined);
  const scripts = scriptServers.filter((server) => server.permissions !== undefined).map((server) => ({
    server,
    i: analysis.mcpIndex.get(server)!,
  }));
  const writes = (p: ToolPermissions | undefined) => Array.isArray(p?.write) && p.write.length > 0;
  const anyWriter = tools.some((t) => writes(t.permissions)) ||
    scripts.some(({ server }) => writes(server.permissions));
  const commandServers = [...analysis.project.mcp.values()].filter((server) => server.command !== undefined);
  const modules = anyWriter
    ? {
      tools: await toolModuleFiles(tools),
      // Every script server's, with permissions or not: rewritten, its code runs with the server's env and
      // answers the agent as the server.
      scripts: await scriptServerFiles(scriptServers.map((server) => resolve(root, server.script!))),
      commands: await commandServersFiles(commandServers, root),
    }
    : { tools: [], scripts: [], commands: { files: [], folders: [], importRoots: [] } };
  const yamlFiles = anyWriter ? await projectYamlFiles(analysis) : [];
  // The project's own (and, for a deployment, the project it was unpacked in), in case a tool lives outside
  // its folder, and the env file it names.
  const envFile = config.env_file === undefined ? [] : [resolve(root, config.env_file)];
  let rootsProtected: string[];
  try {
    rootsProtected = await rootsProtectedPaths(await projectRoots(root));
  } catch (e) {
    // A compozy.yaml above the project that does not parse: the sandbox gives no tool a file grant until it
    // does (grant_paths.ts), so no tool could start. Said here, at the project's root, naming that file.
    if (!(e instanceof ToolFailure)) throw e;
    // One line, as every diagnostic: the YAML error's excerpt of that file is left out.
    diagnostics.error(analysis.projectSource, [], e.message.replace(/:\n[\s\S]*?\n\)/, ")"));
    return;
  }
  const neverGranted = await withRealPaths([...rootsProtected, ...envFile]);
  for (const tool of tools) {
    const site = analysis.sites.get(tool)!;
    if (!tool.permissions) continue;
    const toolDir = dirname(tool.executePath);
    await checkGrantee(
      {
        permissions: tool.permissions,
        base: toolDir,
        moduleDir: toolDir,
        what: "tool",
        envFile: config.env_file,
      },
      modules,
      yamlFiles,
      neverGranted,
      (kind, index, message) => diagnostics.error(site.source, grantPath(site.path, kind, index), message),
      (kind, message) => diagnostics.warning(site.source, grantPath(site.path, kind, undefined), message),
    );
  }
  for (const { server, i } of scripts) {
    const path = ["mcp", i];
    await checkGrantee(
      {
        permissions: server.permissions!,
        base: root,
        moduleDir: dirname(resolve(root, server.script!)),
        what: "MCP server",
        envFile: config.env_file,
      },
      modules,
      yamlFiles,
      neverGranted,
      (kind, index, message) =>
        diagnostics.error(analysis.projectSource, grantPath(path, kind, index), message),
      (kind, message) =>
        diagnostics.warning(analysis.projectSource, grantPath(path, kind, undefined), message),
    );
  }
}

/**
 * The files no `write` grant may cover: every tool's graph and every MCP script server's; and what no `write`
 * grant may reach of the MCP command servers: their files, the folders it may not cover or lie inside, and the
 * import roots it may not lie directly in.
 */
interface ProjectModules {
  tools: readonly string[];
  scripts: readonly string[];
  commands: CommandServerFiles;
}

async function checkGrantee(
  grantee: Grantee,
  modules: ProjectModules,
  yamlFiles: readonly string[],
  neverGranted: readonly string[],
  report: Report,
  warn: (kind: PathKind, message: string) => void,
): Promise<void> {
  const { permissions, what, envFile } = grantee;
  if (permissions.write === true) {
    report(
      "write",
      undefined,
      `write: true would let this ${what} rewrite every tool of the project; list the folders it writes`,
    );
  }
  if (permissions.read === true) {
    const spared = [".compozy/", "its .env* files"];
    if (envFile && !basename(envFile).startsWith(".env")) spared.push(`its env_file (${envFile})`);
    warn(
      "read",
      `read: true lets this ${what} read every file this machine's user can, except the project's ${
        spared.join(", ")
      } and compozy.yaml`,
    );
  }
  await checkWritesMiss(
    grantee,
    modules.tools,
    report,
    (entry, file) => `write grant "${entry}" covers the tool module ${file}: a tool may not rewrite a tool`,
  );
  await checkWritesMiss(
    grantee,
    modules.scripts,
    report,
    (entry, file) =>
      `write grant "${entry}" covers the MCP script server module ${file}: it would run with the server's env and grants, and answer the agent as the server`,
  );
  await checkWritesMiss(
    grantee,
    modules.commands.files,
    report,
    (entry, file) =>
      `write grant "${entry}" covers ${file}, a file an MCP command server runs or reads at its start: it runs unsandboxed, with the runtime's rights and the server's env`,
  );
  await checkWritesMiss(
    grantee,
    modules.commands.folders,
    report,
    (entry, folder) =>
      `write grant "${entry}" reaches ${folder}, a folder an MCP command server may load code from (beside a file it runs, or a launcher's in its working folder), unsandboxed with the runtime's rights and the server's env; keep a command server's files in a folder of their own`,
    coversOrInside,
  );
  await checkWritesMiss(
    grantee,
    modules.commands.importRoots,
    report,
    (entry, folder) =>
      `write grant "${entry}" reaches ${folder}, the working folder of an MCP command server that runs Python with -m or -c, where a package written directly in it (name/__init__.py) is imported ahead of the standard library and the installed ones, unsandboxed with the runtime's rights and the server's env`,
    reachesProgramFolder,
  );
  await checkWritesMiss(
    grantee,
    yamlFiles,
    report,
    (entry, file) =>
      `write grant "${entry}" covers the project file ${file}: it declares permissions and env, and this ${what} may not rewrite them`,
  );
  const code = await runtimeCode();
  await checkWritesMiss(
    grantee,
    code.files,
    report,
    (entry, file) =>
      `write grant "${entry}" covers ${file}, the deno that runs the runtime or the sandboxes, or the nats-server it starts`,
  );
  await checkWritesMiss(
    grantee,
    code.folders,
    report,
    (entry, file) => `write grant "${entry}" reaches ${file}, ${RUNTIME_CODE_WHY}`,
    coversOrInside,
  );
  await checkWritesMiss(
    grantee,
    code.pathFolders,
    report,
    (entry, file) => `write grant "${entry}" reaches ${file}, ${RUNTIME_PATH_WHY}`,
    reachesProgramFolder,
  );
  await checkWritesMiss(
    grantee,
    code.pathLinks,
    report,
    (entry, file) => `write grant "${entry}" covers ${file}, ${RUNTIME_PATH_LINK_WHY}`,
  );
  await checkWritesMiss(
    grantee,
    await projectGitFolders(await projectRoots(grantee.base)),
    report,
    (entry, file) => `write grant "${entry}" reaches ${file}, ${GIT_FOLDER_WHY}`,
    coversOrInside,
  );
  await checkGrantsOnDisk(grantee, neverGranted, report);
}

/** The YAML path of a grant, or of one entry of it. */
function grantPath(path: Site["path"], kind: PathKind, index: number | undefined) {
  return [...path, "permissions", kind, ...(index === undefined ? [] : [index])];
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

/**
 * Every local module file of each script (`deno info`), with real paths; a graph that cannot be read lists
 * its script alone (the MCP check reports why).
 */
async function scriptServerFiles(scripts: readonly string[]): Promise<string[]> {
  const files = new Set<string>();
  await Promise.all(scripts.map(async (script) => {
    let graph: readonly string[] = [script];
    try {
      graph = await scriptModuleFiles(script);
    } catch (e) {
      if (!(e instanceof ToolFailure)) throw e;
    }
    for (const file of graph) files.add(file).add(await realPathOrSelf(file));
  }));
  return [...files].sort();
}

/** What no `write` grant may reach of every MCP command server, started in the project's root. */
async function commandServersFiles(
  servers: readonly McpServerConfig[],
  root: string,
): Promise<CommandServerFiles> {
  const each = await Promise.all(
    servers.map((server) =>
      commandServerFiles(server.command!, server.args ?? [], root, root, server.env ?? {})
    ),
  );
  return {
    files: [...new Set(each.flatMap((f) => f.files))].sort(),
    folders: [...new Set(each.flatMap((f) => f.folders))].sort(),
    importRoots: [...new Set(each.flatMap((f) => f.importRoots))].sort(),
  };
}

/**
 * Reports each write grant that covers one of `files` (by the path as written or its real path); `why` says,
 * for the file it covers, why a tool may not rewrite it.
 */
async function checkWritesMiss(
  { permissions, base }: Grantee,
  files: readonly string[],
  report: Report,
  why: (entry: string, file: string) => string,
  /** Whether a write to `path` reaches `file`: by default when it covers it. */
  reaches: (path: string, file: string) => boolean = covers,
): Promise<void> {
  const writes = permissions.write;
  if (!Array.isArray(writes)) return;
  for (const [i, entry] of writes.entries()) {
    const path = resolve(base, entry);
    const real = await realPathOrSelf(path);
    const hit = files.find((f) => reaches(path, f) || reaches(real, f));
    if (hit !== undefined) report("write", i, why(entry, relative(base, hit)));
  }
}

/** Every YAML file the project loader read (compozy.yaml, workflows, `file=` definitions), with real paths. */
async function projectYamlFiles(analysis: Analysis): Promise<string[]> {
  const root = analysis.project.root;
  const files = new Set<string>([
    analysis.projectSource.file,
    ...analysis.workflows.map((w) => w.source.file),
    ...analysis.fileDefinitions.keys(),
    ...[...analysis.sites.values()].map((site) => site.source.file),
  ].map((file) => resolve(root, file)));
  for (const file of [...files]) files.add(await realPathOrSelf(file));
  return [...files].sort();
}

/** The sandbox's own start-up check of grants (protected files, escaping symlinks), reported at the entry. */
async function checkGrantsOnDisk(
  { permissions, base, moduleDir }: Grantee,
  alsoProtected: readonly string[],
  report: Report,
): Promise<void> {
  try {
    await resolveGrants(normalizePermissions(permissions, base), moduleDir, alsoProtected);
  } catch (e) {
    if (!(e instanceof ToolFailure)) throw e;
    const { permission, entry } = (e.details ?? {}) as { permission?: string; entry?: string };
    const kind: PathKind = permission ?? "read";
    const entries = permissions[kind as keyof typeof permissions];
    const index = Array.isArray(entries) ? entries.findIndex((x) => resolve(base, x) === entry) : -1;
    report(kind, index === -1 ? undefined : index, e.message);
  }
}
