/**
 * Checks a tool's module graph before any of its code runs, and lists the files the sandbox may read to load
 * it. A tool may import only JavaScript and TypeScript files inside its own folder, `.json` files there with
 * `with { type: "json" }`, and Node built-ins that cannot evaluate strings as code.
 *
 * Deno's flags already refuse remote (`--no-remote`), npm and jsr (`--no-npm`) modules, and the sandbox
 * process may read exactly the files listed here. But `data:` and `blob:` modules need no permission in
 * Deno 2.9.6, and a text or bytes import (`with { type: "text" }`) reads any file the loader may read, so this
 * check is what refuses them. It reads the static graph from `deno info` (which also lists dynamic imports
 * whose specifier is a string literal) and parses every module (import_scan.ts) to refuse any `import(...)`
 * it cannot see. Strings evaluated as code (`eval`, `new Function`) are disabled in the sandbox by a V8 flag,
 * and the Node built-ins that evaluate strings anyway (`vm`, `worker_threads`, `module`, `repl`) are refused here, so
 * a tool cannot build a specifier at run time that this check did not see.
 *
 * This is defence in depth: code that got past it would still run with the tool's own permissions, and the
 * loader could still read only the files of the checked graph.
 *
 * @module
 */
import { fsErrorText } from "../utils/fs_error_text.ts";
import { basename, dirname, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { realPathOrSelf } from "./grant_paths.ts";
import { GraphReadTimeout, readModuleGraph } from "./graph_reader.ts";
import { scanModule } from "./import_scan.ts";
import { covers } from "./link_scan.ts";
import { ToolFailure } from "./tool_failure.ts";

export { findComputedImport } from "./import_scan.ts";

/** Why a module among the project's secrets is refused. */
const PROTECTED_WHY = "the project's .compozy/, .env* files, env_file and compozy.yaml are never readable";
/** Built-ins refused because they run strings as code, bypassing the import check. */
const RUNS_STRINGS = "this built-in can run strings as code";
/** Its timers are not the global ones the sandbox tracks, so they would outlive the call that set them. */
const UNTRACKED_TIMERS = "its timers outlive the call; use the global setTimeout and setInterval";
/** Process-wide knobs: a flag, a hook or a trace of one call acts on every later call of the process. */
const PROCESS_WIDE =
  "it changes the whole sandbox process (V8 flags, heap snapshots, promise hooks), not only the call";
/**
 * Node's internal modules (`_http_agent`, `_http_common`, `_tls_wrap`, `_stream_readable`, …), deprecated for
 * users: they hold what the public modules keep in closures, past the put-back of Node's objects after each
 * call (`_http_agent`'s `setGlobalAgent` replaced the agent every later call's requests use; outside break
 * attempt brk44). Refused to tools by their `_` prefix (and by `process.getBuiltinModule`, tool_worker.ts);
 * their public modules export what a tool needs.
 */
const NODE_INTERNALS =
  "Node's internal modules reach state of the whole sandbox process behind the public ones; import the public module";
const REFUSED_BUILTINS = new Map([
  ["vm", RUNS_STRINGS],
  ["worker_threads", RUNS_STRINGS],
  ["module", RUNS_STRINGS],
  // Its server evaluates each line it reads, past --disallow-code-generation-from-strings (second red team).
  ["repl", RUNS_STRINGS],
  ["timers", UNTRACKED_TIMERS],
  ["timers/promises", UNTRACKED_TIMERS],
  // `setFlagsFromString`, `setHeapSnapshotNearHeapLimit`, `getHeapSnapshot` (every string of the worker's
  // heap, earlier calls' inputs included), `promiseHooks`: named exports, which no patch of the module's
  // object reaches, so the module is refused whole.
  ["v8", PROCESS_WIDE],
  ["trace_events", PROCESS_WIDE],
  // A WASI instance does its own I/O on the process's file descriptors (fd 0 and 1 carry the runtime's call
  // frames, the defaults of `stdin`/`stdout`) and on the files below its preopened folders, which the
  // sandbox's per-call tracking and output capture do not see. No tool needs it.
  ["wasi", "its WASI instances read and write the sandbox's own file descriptors and preopened folders"],
  // SQLite opens its temp files itself (in /var/tmp, or any folder `PRAGMA temp_store_directory` names),
  // where no permission check sees them: with no grant, a tool created files outside its folders and held
  // RAM in /dev/shm that the memory watch never counts (red team 6).
  ["sqlite", "SQLite writes its own temp files outside the tool's grants"],
]);

/**
 * The built-ins a `script` MCP server may not import (its prelude refuses them to `process.getBuiltinModule`
 * too, mcp_transport.ts): those that run strings as code, and `sqlite`, whose temp files land in any folder
 * `PRAGMA temp_store_directory` names, past the script's grants and its memory ceiling (RAM in `/dev/shm`),
 * and whose answer tells whether a folder it may not read exists (issue 10, sbx2). The others refused to tools
 * guard the warm worker's calls from each other, which a script server, one process per agent call, has not.
 */
export const SCRIPT_REFUSED_BUILTINS: readonly string[] = [
  "vm",
  "worker_threads",
  "module",
  "repl",
  "sqlite",
];

/**
 * The largest module, and the most code in one graph, that the check parses (bytes). The parse runs on the
 * thread of whoever checks (the runtime, `compozy validate`), and costs about 200 MB of heap per MB of code
 * and seconds per MB on a loaded machine: a 6 MB module held the runtime's thread for a minute and kept
 * 1.2 GB, a 26 MB one took it to its heap limit and every other call failed `runtime_unavailable` for six
 * minutes (red team 7, R1). A bigger graph is refused before any parse.
 */
export const MAX_MODULE_BYTES = 2 * 1024 * 1024;
export const MAX_GRAPH_CODE_BYTES = 8 * 1024 * 1024;

/**
 * The most modules one tool's graph may have, and the longest list of its files (bytes, commas included).
 * The sandbox process may read exactly those files, named in one `--allow-read=` argument, and Linux refuses
 * an argument over 128 KiB (`MAX_ARG_STRLEN`): a tool of 20,000 one-line modules was checked for 19 s (the
 * runtime's thread stalled up to 0.85 s at a time) and then every call failed `tool_crashed` "Argument list
 * too long" (outside break attempt brk-sbx3 G5). Refused before any module is parsed when the count is over,
 * after the check when the list is.
 */
export const MAX_GRAPH_MODULES = 1_000;
export const MAX_GRAPH_FILE_LIST_BYTES = 96 * 1024;

/**
 * Media types of code the import check can parse, as `deno info` spells them ("JSX" and "TSX" in capitals:
 * spelt "Jsx" and "Tsx" here, every .jsx and .tsx tool was refused). CommonJS is refused (`require` takes
 * computed names).
 */
const CODE_MEDIA_TYPES = new Set(["JavaScript", "Mjs", "JSX", "TypeScript", "Mts", "TSX", "Dts", "Dmts"]);
// The project's store, secrets and config are never part of a tool: not even a JSON import may read them.
const PROTECTED_NAMES = /^(\.env.*|compozy\.ya?ml)$/;
const PROTECTED_FOLDER = ".compozy";
// A comma or control character in a path would split or hide an entry of the `--allow-read=a,b` flag.
// deno-lint-ignore no-control-regex
const UNSAFE_PATH = /[,\u0000-\u001f\u007f]/;

interface InfoDependency {
  specifier: string;
  code?: { specifier: string };
  assertionType?: string;
}

interface InfoModule {
  specifier: string;
  local?: string;
  error?: string;
  kind?: string;
  mediaType?: string;
  moduleName?: string;
  dependencies?: InfoDependency[];
}

/** What the sandbox needs to know about a tool's module graph. */
export interface ToolModuleInfo {
  /**
   * The graph imports `node:` built-ins (which set up Node's `process` object as they load) or names
   * `process`: its sandbox sets `process` up before the realm is frozen, which costs a cold start more.
   */
  needsNodeProcess: boolean;
  /** The `node:` built-ins the graph imports (`fs`, `events`, …): their objects are restored after each call. */
  nodeBuiltins: readonly string[];
  /** Every local file of the graph, as Deno will read it (and its real path when that differs). */
  files: readonly string[];
}

/**
 * The local files of a checked graph, with their modification times, to tell when a check is stale; and its
 * outcome: what the sandbox needs, or the refusal.
 */
interface CheckedGraph {
  info?: ToolModuleInfo;
  refusal?: ToolFailure;
  files: string[];
  mtimes: (number | undefined)[];
}

const checked = new Map<string, CheckedGraph>();
// Calls that arrive together for a new tool share one `deno info` run.
const checking = new Map<string, Promise<ToolModuleInfo>>();

/**
 * Checks the module graph of the tool at `executePath` (absolute), once per version of its files.
 *
 * @throws {ToolFailure} `tool_module_invalid` (missing file, syntax error) or `tool_import_refused`.
 */
export function checkToolModule(executePath: string): Promise<ToolModuleInfo> {
  let check = checking.get(executePath);
  if (!check) {
    check = checkOnce(executePath).finally(() => checking.delete(executePath));
    checking.set(executePath, check);
  }
  return check;
}

function checkOnce(executePath: string): Promise<ToolModuleInfo> {
  return keptCheck(checked, executePath, (graphFiles) => checkGraph(executePath, graphFiles));
}

/**
 * The outcome of `check` for `key`, kept in `cache` for this version of the graph's files: a pass, and a
 * refusal too. The parse runs on the runtime's thread, and a 2 MiB module takes it seconds (2.6–11.7 s at
 * load 15), so a tool refused at the end of its graph held the thread that long at each of its calls (outside
 * break attempt brk42). `check` lists the files it read in `graphFiles` as it goes, so a refusal is kept for
 * them.
 */
async function keptCheck(
  cache: Map<string, CheckedGraph>,
  key: string,
  check: (graphFiles: string[]) => Promise<{ info: ToolModuleInfo; files: string[] }>,
): Promise<ToolModuleInfo> {
  const cached = cache.get(key);
  if (cached && await unchanged(cached)) {
    if (cached.refusal) throw cached.refusal;
    return cached.info!;
  }
  cache.delete(key);
  const graphFiles: string[] = [];
  try {
    const { info, files } = await check(graphFiles);
    cache.set(key, { info, files, mtimes: await Promise.all(files.map(mtimeOf)) });
    return info;
  } catch (e) {
    if (e instanceof ToolFailure && graphFiles.length > 0) {
      cache.set(key, { refusal: e, files: graphFiles, mtimes: await Promise.all(graphFiles.map(mtimeOf)) });
    }
    throw e;
  }
}

/**
 * Whether the module at `executePath` changed since the check that gave `info`: a newer check replaced it, or
 * one of its graph's files was written since. A sandbox started for `info` and loading the module then may
 * have met the new content (see tool_runner.ts, the start of a sandbox whose module was saved meanwhile).
 */
export async function moduleChanged(executePath: string, info: ToolModuleInfo): Promise<boolean> {
  const cached = checked.get(executePath);
  return cached?.info !== info || !(await unchanged(cached));
}

async function unchanged(graph: CheckedGraph): Promise<boolean> {
  const now = await Promise.all(graph.files.map(mtimeOf));
  return now.every((m, i) => m !== undefined && m === graph.mtimes[i]);
}

async function mtimeOf(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime();
  } catch {
    return undefined;
  }
}

/**
 * `graphFiles` gets the local files of the whole graph once `deno info` has listed them all, when they alone
 * decide the check (no module failed to load: a missing file may appear later), so a refusal can be kept.
 */
async function checkGraph(
  executePath: string,
  graphFiles: string[],
): Promise<{ info: ToolModuleInfo; files: string[] }> {
  const toolDir = dirname(executePath);
  const realDir = await realPathOrRefuse(toolDir, executePath);
  const modules = await denoInfo(executePath, toolDir);
  if (modules.every((m) => !m.error)) graphFiles.push(...modules.flatMap((m) => m.local ? [m.local] : []));
  if (modules.length > MAX_GRAPH_MODULES) {
    throw graphTooLarge(executePath, `${modules.length} modules, over the ${MAX_GRAPH_MODULES}`);
  }
  const files: string[] = [];
  const readable = new Set<string>();
  let needsNodeProcess = false;
  const nodeBuiltins = new Set<string>();
  // First, so that an attribute Deno cannot load (`bytes`) is a refusal, not a broken module.
  for (const m of modules) checkAttributes(executePath, m);
  await checkCodeSize(executePath, modules);
  for (const m of modules) {
    if (m.error) throw await toolModuleError(executePath, m, toolDir, realDir);
    if (m.kind === "node") {
      needsNodeProcess = true;
      const name = (m.moduleName ?? m.specifier).replace(/^node:/, "");
      const reason = REFUSED_BUILTINS.get(name) ?? (name.startsWith("_") ? NODE_INTERNALS : undefined);
      if (reason) throw refused(executePath, m.specifier, reason);
      nodeBuiltins.add(name);
      continue;
    }
    if (!m.specifier.startsWith("file:") || !m.local) {
      throw refused(executePath, m.specifier, "only files in the tool's folder may be imported");
    }
    // A symlink inside the folder may point outside it; what counts is where the bytes live.
    const real = await realPathOrRefuse(m.local, executePath);
    if (!real.startsWith(realDir + sep)) {
      throw refused(executePath, m.specifier, "it is outside the tool's folder");
    }
    if (isProtected(relative(realDir, real)) || isProtected(relative(toolDir, m.local))) {
      throw refused(executePath, m.specifier, PROTECTED_WHY);
    }
    if (UNSAFE_PATH.test(m.local) || UNSAFE_PATH.test(real)) {
      throw refused(executePath, m.specifier, "its path contains a comma or a control character");
    }
    if (await checkModuleKind(executePath, m)) needsNodeProcess = true;
    files.push(m.local);
    readable.add(m.local).add(real);
  }
  const listBytes = new TextEncoder().encode([...readable].join(",")).length;
  if (listBytes > MAX_GRAPH_FILE_LIST_BYTES) {
    throw graphTooLarge(
      executePath,
      `files whose paths take ${listBytes} bytes, over the ${MAX_GRAPH_FILE_LIST_BYTES}`,
    );
  }
  return {
    info: { needsNodeProcess, nodeBuiltins: [...nodeBuiltins].sort(), files: [...readable].sort() },
    files,
  };
}

function graphTooLarge(executePath: string, what: string): ToolFailure {
  return new ToolFailure(
    "tool_import_refused",
    `Tool module ${executePath} has a graph of ${what} a sandbox can be given to read: refused`,
    { details: { executePath } },
  );
}

/**
 * Every local file of a script's module graph, as Deno reads it: what no tool's `write` grant may cover
 * (engine/domain/project/check_tool_permissions.ts). Its `npm:` packages live in Deno's cache, which no grant
 * reaches (runtime_code.ts `guardRuntimeWrites`).
 *
 * @throws {ToolFailure} `tool_module_invalid` when `deno info` cannot read the graph.
 */
export async function scriptModuleFiles(scriptPath: string): Promise<string[]> {
  const modules = await denoInfo(scriptPath, dirname(scriptPath));
  return modules.filter((m) => m.specifier.startsWith("file:") && m.local !== undefined).map((m) => m.local!);
}

/**
 * Checks the static module graph of an MCP `script` server before its `deno run` starts (`scriptPath`
 * absolute). Deno 2.9.6 loads a main module's static graph without permission checks, `--deny-read`
 * included, and a text import needs no flag: a script granted nothing read the project's `.env` and the NATS
 * config (the bus passwords) by `import t from "../.env" with { type: "text" }` (red team 8, S4). So, as for
 * a tool: no text or bytes import, JSON only as JSON from a `.json` file, no local module under a path that is
 * never granted (`neverRead`: the projects' `.compozy/`, `.env*`, `env_file`, `compozy.yaml`, by real path
 * too), no `data:`/`blob:` module, and every local module parsed for an `import()` with a computed specifier
 * (which could compile a string into a `data:` module, S4b). Unlike a tool, a script may import files
 * outside its folder, within `mayRead` ({@linkcode scriptReadRoots}: its folder, its project and its `read`
 * grants, by real path; G6), and `npm:` packages (their own files are not listed by `deno info` and are not
 * checked). Checked once per version of its graph's files.
 *
 * @throws {ToolFailure} `tool_import_refused`, or `tool_module_invalid` for a missing file.
 */
export async function checkScriptModule(
  scriptPath: string,
  neverRead: readonly string[],
  mayRead: true | readonly string[],
): Promise<void> {
  const key = `${scriptPath}\0${neverRead.join("\0")}\0${mayRead === true ? "*" : mayRead.join("\0")}`;
  await keptCheck(checkedScripts, key, async (graphFiles) => ({
    info: SCRIPT_INFO,
    files: await checkScriptGraph(scriptPath, neverRead, mayRead, graphFiles),
  }));
}

/** The checks of {@linkcode checkScriptModule}; returns the graph's checked files (see `checkGraph`). */
async function checkScriptGraph(
  scriptPath: string,
  neverRead: readonly string[],
  mayRead: true | readonly string[],
  graphFiles: string[],
): Promise<string[]> {
  const modules = await denoInfo(scriptPath, dirname(scriptPath));
  if (modules.every((m) => !m.error)) graphFiles.push(...modules.flatMap((m) => m.local ? [m.local] : []));
  for (const m of modules) checkAttributes(scriptPath, m);
  const local = modules.filter((m) => m.specifier.startsWith("file:") && m.local !== undefined);
  await checkCodeSize(scriptPath, local);
  const readable = mayRead === true ? true : await withRealPaths(mayRead);
  const files: string[] = [];
  for (const m of modules) {
    if (/^(data|blob):/i.test(m.specifier)) {
      throw refused(scriptPath, m.specifier, "data: and blob: modules are refused");
    }
    if (m.kind === "node") {
      const name = (m.moduleName ?? m.specifier).replace(/^node:/, "");
      const reason = REFUSED_BUILTINS.get(name);
      if (reason !== undefined && SCRIPT_REFUSED_BUILTINS.includes(name)) {
        throw refused(scriptPath, m.specifier, reason);
      }
      continue;
    }
    if (m.error) throw await scriptModuleError(scriptPath, m, neverRead);
    if (!m.specifier.startsWith("file:") || !m.local) continue;
    const real = await realPathOrRefuse(m.local, scriptPath);
    const hit = neverRead.find((p) => covers(p, m.local!) || covers(p, real));
    if (hit !== undefined) {
      throw refused(
        scriptPath,
        m.specifier,
        `it is under ${hit}: ${PROTECTED_WHY}`,
      );
    }
    if (readable !== true && !readable.some((root) => covers(root, real))) {
      throw refused(scriptPath, m.specifier, OUTSIDE_SCRIPT_READ);
    }
    await checkModuleKind(scriptPath, m);
    files.push(m.local);
  }
  return files;
}

/**
 * The folders a script's static graph may come from: its own folder, its project (`base`, where its relative
 * grants start) and its `read` grants; `true` when it may read everything. Deno loads a main module's static
 * graph without permission checks, so a script granted nothing read any `.json` file on the host (a cloud
 * credentials file, `~/.docker/config.json`) by a JSON import, and the constants of any module, while
 * `Deno.readTextFile` of the same file was refused (outside break attempt brk-sbx3 G6).
 */
export function scriptReadRoots(
  scriptPath: string,
  base: string,
  read: boolean | readonly string[] | undefined,
): true | string[] {
  if (read === true) return true;
  const grants = Array.isArray(read) ? read : [];
  return [dirname(scriptPath), base, ...grants.map((entry) => resolve(base, entry))];
}

const OUTSIDE_SCRIPT_READ =
  "it is outside the script's folder, its project and its read grants (a static import is read without a permission check)";

async function withRealPaths(paths: readonly string[]): Promise<string[]> {
  const all = new Set(paths);
  for (const path of paths) all.add(await realPathOrSelf(path));
  return [...all];
}

const checkedScripts = new Map<string, CheckedGraph>();
const SCRIPT_INFO: ToolModuleInfo = { needsNodeProcess: false, nodeBuiltins: [], files: [] };

/**
 * Code is parsed for dynamic imports; data may only be JSON, imported as JSON. True when the module names
 * Node's `process`.
 */
async function checkModuleKind(executePath: string, m: InfoModule): Promise<boolean> {
  if (m.kind === "asserted" && m.mediaType === "Json" && m.local!.endsWith(".json")) return false;
  if (m.kind !== "esm" || !CODE_MEDIA_TYPES.has(m.mediaType ?? "")) {
    const what = m.kind === "external"
      ? "a text or bytes import"
      : `a ${m.mediaType ?? m.kind ?? "unknown"} module`;
    throw refused(
      executePath,
      m.specifier,
      `${what} is refused (only JS/TS modules and .json files as JSON)`,
    );
  }
  const seen = new Set((m.dependencies ?? []).map((d) => d.specifier));
  const scan = scanModule(executePath, m.local!, await Deno.readTextFile(m.local!), m.mediaType);
  for (const literal of scan.imports) {
    // Two parsers read this file; where they disagree, the import is one `deno info` did not check.
    if (!seen.has(literal.specifier)) {
      throw refused(
        executePath,
        literal.specifier,
        `${m.local}:${literal.line}:${literal.column}: the module graph does not list this import`,
      );
    }
  }
  return scan.namesProcess;
}

/** Refuses a module or a graph bigger than the parse may take, before any module is parsed. */
async function checkCodeSize(executePath: string, modules: InfoModule[]): Promise<void> {
  let total = 0;
  for (const m of modules) {
    // A module in error is refused for that below.
    if (m.kind !== "esm" || m.local === undefined || m.error) continue;
    const { size } = await Deno.stat(m.local);
    if (size > MAX_MODULE_BYTES) {
      throw refused(
        executePath,
        m.specifier,
        `it is ${size} bytes, over the ${MAX_MODULE_BYTES} bytes the import check parses in one module`,
      );
    }
    total += size;
    if (total > MAX_GRAPH_CODE_BYTES) {
      throw refused(
        executePath,
        m.specifier,
        `the tool's modules reach ${total} bytes with it, over the ${MAX_GRAPH_CODE_BYTES} bytes the import check parses in one graph`,
      );
    }
  }
}

/** Import attributes: only `type: "json"`, only on a `.json` file. */
function checkAttributes(executePath: string, m: InfoModule): void {
  for (const dep of m.dependencies ?? []) {
    const type = dep.assertionType;
    if (type === undefined) continue;
    if (type !== "json" || !(dep.code?.specifier ?? dep.specifier).endsWith(".json")) {
      throw refused(
        executePath,
        dep.specifier,
        `import attribute type "${type}" is refused; only .json files may be imported, as "json"`,
      );
    }
  }
}

/** `.env*`, `compozy.yaml` or anything under a `.compozy` folder, by a path relative to the tool. */
function isProtected(relativePath: string): boolean {
  const segments = relativePath.split(sep);
  return segments.includes(PROTECTED_FOLDER) || PROTECTED_NAMES.test(basename(relativePath));
}

async function realPathOrRefuse(path: string, executePath: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (cause) {
    throw new ToolFailure(
      "tool_module_invalid",
      `Cannot load tool module ${executePath}: ${path} not found`,
      {
        cause,
        details: { executePath, path },
      },
    );
  }
}

async function denoInfo(executePath: string, cwd: string): Promise<InfoModule[]> {
  let out: Deno.CommandOutput;
  try {
    out = await readModuleGraph(executePath, cwd);
  } catch (e) {
    if (!(e instanceof GraphReadTimeout)) throw e;
    throw new ToolFailure("tool_module_invalid", `Cannot analyse tool module ${executePath}: ${e.message}`, {
      cause: e,
      details: { executePath, timeoutMs: e.timeoutMs },
    });
  }
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) {
    throw new ToolFailure("tool_module_invalid", `Cannot analyse tool module ${executePath}: ${stderr}`, {
      details: { executePath },
    });
  }
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] }).modules;
}

/**
 * The failure for a module `deno info` could not load, told only for the tool's own files. Its error may
 * quote the file (a parse error shows the offending line), and Deno parses a file with no extension as
 * TypeScript: a tool that imported "../.env" failed with the project's secret in its message, which the
 * task's state, history and `compozy validate` keep (outside break attempt brk-sbx3 G4). A module outside
 * the tool's folder, or protected, is refused as such, without Deno's words.
 */
async function toolModuleError(
  executePath: string,
  m: InfoModule,
  toolDir: string,
  realDir: string,
): Promise<ToolFailure> {
  if (!m.specifier.startsWith("file:")) return graphError(executePath, m);
  const path = fileURLToPath(m.specifier);
  const { real, unfollowed } = await realPathIfThere(path);
  // A module that is not there has no real path: where it was looked for counts.
  const inside = real.startsWith(realDir + sep) || (real === path && path.startsWith(toolDir + sep));
  if (!inside) return refused(executePath, m.specifier, "it is outside the tool's folder");
  if (isProtected(relative(realDir, real)) || isProtected(relative(toolDir, path))) {
    return refused(executePath, m.specifier, PROTECTED_WHY);
  }
  return graphError(executePath, m, unfollowed);
}

/** As {@linkcode toolModuleError}, for an MCP script: its never-readable files are refused without Deno's words. */
async function scriptModuleError(
  scriptPath: string,
  m: InfoModule,
  neverRead: readonly string[],
): Promise<ToolFailure> {
  if (!m.specifier.startsWith("file:")) return graphError(scriptPath, m);
  const path = fileURLToPath(m.specifier);
  const { real, unfollowed } = await realPathIfThere(path);
  const hit = neverRead.find((p) => covers(p, path) || covers(p, real));
  if (hit !== undefined) return refused(scriptPath, m.specifier, `it is under ${hit}: ${PROTECTED_WHY}`);
  return graphError(scriptPath, m, unfollowed);
}

/**
 * The real path of `path`, or `path` itself when the file system cannot follow it to a file, and why a module
 * `deno info` could not load is not there (`unfollowed`, which Deno's "Import '…' failed." does not say): a
 * file where a folder was expected (`./greet.ts/x.ts`, ENOTDIR), a loop of links (ELOOP), a folder it may not
 * search or a file it may not read (EACCES), a name too long. Thrown from here, such a path ended
 * `compozy validate` with "internal error" and failed the tool's call as a crash of the runtime.
 */
async function realPathIfThere(path: string): Promise<{ real: string; unfollowed?: string }> {
  let real: string;
  try {
    real = await Deno.realPath(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { real: path };
    if (cannotFollow(e)) return { real: path, unfollowed: fsErrorText(e) };
    throw e;
  }
  try {
    // Only a regular file: opening a FIFO would wait for a writer.
    if ((await Deno.stat(real)).isFile) (await Deno.open(real)).close();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { real }; // removed since
    if (cannotFollow(e)) return { real, unfollowed: fsErrorText(e) };
    throw e;
  }
  return { real };
}

function cannotFollow(error: unknown): error is Error {
  return error instanceof Deno.errors.NotADirectory ||
    error instanceof Deno.errors.FilesystemLoop || error instanceof Deno.errors.PermissionDenied ||
    (error as { code?: unknown }).code === "ENAMETOOLONG";
}

/** `unfollowed`: why the file system could not follow the module's path, which `deno info` does not say. */
function graphError(executePath: string, m: InfoModule, unfollowed?: string): ToolFailure {
  // Remote, npm and jsr modules fail to resolve under --no-remote/--no-npm; that is a refusal, not a bug.
  if (!m.specifier.startsWith("file:")) {
    return refused(executePath, m.specifier, "only files in the tool's folder may be imported");
  }
  const error = unfollowed === undefined ? m.error : `${m.error?.replace(/\.$/, "")}: ${unfollowed}`;
  return new ToolFailure("tool_module_invalid", `Cannot load tool module ${executePath}: ${error}`, {
    details: { executePath, specifier: m.specifier },
  });
}

function refused(executePath: string, specifier: string, why: string): ToolFailure {
  return new ToolFailure(
    "tool_import_refused",
    `Tool module ${executePath} imports "${shorten(specifier)}": refused, ${why}`,
    { details: { executePath, specifier: shorten(specifier) } },
  );
}

function shorten(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}
