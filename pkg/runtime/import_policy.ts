/**
 * Checks a tool's module graph before any of its code runs: a tool may import only files inside its own
 * folder and Node built-ins that cannot evaluate strings as code.
 *
 * Deno's flags already refuse remote (`--no-remote`), npm and jsr (`--no-npm`) modules, and read
 * permissions refuse local files outside the folder. But `data:` and `blob:` modules need no permission
 * in Deno 2.9.6, so this check is what refuses them. It reads the static graph from `deno info` (which also
 * lists dynamic imports whose specifier is a string literal) and refuses any `import(...)` whose specifier
 * it cannot see. Strings evaluated as code (`eval`, `new Function`) are disabled in the sandbox by a V8
 * flag, and the Node built-ins that evaluate strings anyway (`vm`, `worker_threads`, `module`) are refused
 * here, so a tool cannot build a specifier at run time that this check did not see.
 *
 * This is defence in depth: code that got past it would still run with the tool's own permissions.
 *
 * @module
 */
import { dirname, sep } from "node:path";
import { denoExecutable } from "./deno_executable.ts";
import { ToolFailure } from "./tool_failure.ts";

/** Built-ins refused because they run strings as code, bypassing the import check. */
const REFUSED_BUILTINS = new Set(["vm", "worker_threads", "module"]);

interface InfoModule {
  specifier: string;
  local?: string;
  error?: string;
  kind?: string;
  moduleName?: string;
}

/** What the sandbox needs to know about a tool's module graph. */
export interface ToolModuleInfo {
  /** The graph imports `node:` built-ins (which set up Node's `process` object as they load). */
  usesNodeBuiltins: boolean;
}

/** The local files of a checked graph, with their modification times, to tell when a check is stale. */
interface CheckedGraph {
  info: ToolModuleInfo;
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

async function checkOnce(executePath: string): Promise<ToolModuleInfo> {
  const cached = checked.get(executePath);
  if (cached && await unchanged(cached)) return cached.info;
  checked.delete(executePath);
  const { info, files } = await checkGraph(executePath);
  checked.set(executePath, { info, files, mtimes: await Promise.all(files.map(mtimeOf)) });
  return info;
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

async function checkGraph(executePath: string): Promise<{ info: ToolModuleInfo; files: string[] }> {
  const toolDir = dirname(executePath);
  const realDir = await realPathOrRefuse(toolDir, executePath);
  const modules = await denoInfo(executePath, toolDir);
  const files: string[] = [];
  let usesNodeBuiltins = false;
  for (const m of modules) {
    if (m.error) throw graphError(executePath, m);
    if (m.kind === "node") {
      usesNodeBuiltins = true;
      const name = (m.moduleName ?? m.specifier).replace(/^node:/, "");
      if (REFUSED_BUILTINS.has(name)) {
        throw refused(executePath, m.specifier, "this built-in can run strings as code");
      }
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
    findComputedImport(executePath, m.local, await Deno.readTextFile(m.local));
    files.push(m.local);
  }
  return { info: { usesNodeBuiltins }, files };
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
  const out = await new Deno.Command(denoExecutable(), {
    args: ["info", "--json", "--no-config", "--no-lock", "--no-remote", "--no-npm", executePath],
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) {
    throw new ToolFailure("tool_module_invalid", `Cannot analyse tool module ${executePath}: ${stderr}`, {
      details: { executePath },
    });
  }
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] }).modules;
}

function graphError(executePath: string, m: InfoModule): ToolFailure {
  // Remote, npm and jsr modules fail to resolve under --no-remote/--no-npm; that is a refusal, not a bug.
  if (!m.specifier.startsWith("file:")) {
    return refused(executePath, m.specifier, "only files in the tool's folder may be imported");
  }
  return new ToolFailure("tool_module_invalid", `Cannot load tool module ${executePath}: ${m.error}`, {
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

// `import(`, not `x.import(`, with any white space or comments before the parenthesis.
const DYNAMIC_IMPORT = /(?<![.\w$])import(?:\s|\/\*[\s\S]*?\*\/|\/\/[^\n]*\n)*\(/g;
// A specifier `deno info` can see: one plain string literal, then `)` or `,` (import attributes).
const LITERAL_ARGUMENT = /^\s*(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')\s*[,)]/;

/**
 * Refuses an `import(...)` whose specifier is not a string literal. The scan is lexical, so the text
 * `import(` inside a comment or string is refused too: a false alarm the author can fix, never a miss.
 */
export function findComputedImport(executePath: string, file: string, source: string): void {
  for (const match of source.matchAll(DYNAMIC_IMPORT)) {
    const after = match.index + match[0].length;
    if (LITERAL_ARGUMENT.test(source.slice(after, after + 2048))) continue;
    const line = source.slice(0, match.index).split("\n").length;
    throw new ToolFailure(
      "tool_import_refused",
      `Tool module ${executePath}: ${file}:${line}: import() with a computed specifier is refused; ` +
        "use a static import or a string literal",
      { details: { executePath, file, line } },
    );
  }
}
