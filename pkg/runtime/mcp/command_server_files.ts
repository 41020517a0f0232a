/**
 * The files an MCP `command` server runs, as far as its command line names them: what no tool's or script
 * server's `write` grant may reach (engine/domain/project/check_tool_permissions.ts). A `command` server runs
 * unsandboxed, with the runtime's rights and its own `env:`; a tool that rewrites its code runs as it at its
 * next start (issue 10, sbx2).
 *
 * Its files are:
 * - the program, when `command` is a path (`./mcp/server.sh`, `/opt/mcp/bin/server`), and every argument that
 *   names an existing file, or the value of an argument written `--name=value` that does, each relative to the
 *   server's working folder (the project's root) or absolute: a script an interpreter runs
 *   (`node ./mcp/server.js`), a module Deno runs, a configuration it reads; and each word of an argument or
 *   of an `env:` value that names an existing file, split at blanks, quotes, `=` and the shell's operators:
 *   a command line a shell runs (`sh -c "exec node ./mcp/server.js"`), a file a variable loads
 *   (`NODE_OPTIONS: --require ./mcp/hook.js`);
 * - each local module such a file imports when it is a JavaScript or TypeScript module (`deno info`; a graph
 *   that cannot be read counts its file alone);
 * - for each named file inside the project, its whole folder: a program loads code from beside itself by its
 *   own rules (Python puts the script's folder before the standard library, Node looks in `./node_modules` and
 *   follows `require`, a shell script sources its neighbours), which no command line shows. Outside the
 *   project only the files themselves count: the folder of `/usr/bin/python3` is the host's, kept by other
 *   rules (the runtime's PATH), and a file under `/tmp` must not close all of `/tmp`;
 * - in its working folder, the entries by which the common launchers pick code or settings from the folder
 *   they run in, named in a command line or not: `node_modules` and `.venv` (folders), `package.json`,
 *   `.npmrc`, `deno.json`, `deno.jsonc` and `pyproject.toml` (`npx` runs a package found in
 *   `./node_modules` before fetching one, Deno reads the import map of a `deno.json` it finds there, `uv run`
 *   the project's `pyproject.toml` and `.venv`), whether they exist yet or not;
 * - each folder listed in its `env:` by a variable that names where a program loads code from (`PATH`,
 *   `PYTHONPATH`, `PYTHONHOME`, `NODE_PATH`, `PERL5LIB`, `PERLLIB`, `RUBYLIB`, `GEM_HOME`, `GEM_PATH`,
 *   `CLASSPATH`, `LD_LIBRARY_PATH`, `DENO_DIR`), relative to the working folder or absolute, existing or not
 *   (a tool could create it), as a folder no grant may cover or lie inside;
 * - its working folder as an import root, when its command line runs Python with `-m` or `-c` (a word
 *   `python`, `python3`, `python3.12`… and a word `-m` or `-c`): Python then puts the working folder first on
 *   its module path, ahead of the standard library and the installed packages, so a package written directly
 *   in it (`./mcp/__init__.py`, `./json/__init__.py`) is what `import mcp` or `import json` loads (probed,
 *   Python 3.11). No `write` entry may be that folder, hold it or lie directly in it.
 *
 * Not known: a folder argument (`node ./mcp/server`, data a server serves), a file named relative to another
 * folder (`uv --directory ./mcp run server.py`), a word built by the shell or a template (`$DIR/server.js`,
 * `{{ .env.DIR }}/server.js`) and packages a launcher fetches (`npx` into `~/.npm`): docs/runtime-sandbox.md, "Write grants and MCP `command`
 * servers".
 *
 * @module
 */

import { dirname, extname, resolve } from "node:path";
import { covers, realPathOrSelf } from "../grant_paths.ts";
import { scriptModuleFiles } from "../import_policy.ts";
import { ToolFailure } from "../tool_failure.ts";

/**
 * What no `write` grant may reach: `files` it may not cover, `folders` it may not cover or lie inside (the
 * files inside these are not listed again), `importRoots` it may not be, cover or lie directly in.
 */
export interface CommandServerFiles {
  files: string[];
  folders: string[];
  importRoots: string[];
}

/** A Python interpreter's name (`python`, `python3`, `python3.12`), as a word or a path's last part. */
const PYTHON = /(^|\/)python[\d.]*$/;

/** The launchers' folders and files in a server's working folder (module comment). */
const LAUNCHER_FOLDERS = ["node_modules", ".venv"];
const LAUNCHER_FILES = ["package.json", ".npmrc", "deno.json", "deno.jsonc", "pyproject.toml"];

/**
 * Variables whose value lists folders a program loads code from, by name and at its start: Python's, Node's,
 * Perl's, Ruby's, Java's module paths, the dynamic loader's library path, the program look-up path and Deno's
 * cache of remote modules.
 */
const SEARCH_PATH_VARIABLES = new Set([
  "PATH",
  "PYTHONPATH",
  "PYTHONHOME",
  "NODE_PATH",
  "PERL5LIB",
  "PERLLIB",
  "RUBYLIB",
  "GEM_HOME",
  "GEM_PATH",
  "CLASSPATH",
  "LD_LIBRARY_PATH",
  "DENO_DIR",
]);

/** Extensions `deno info` reads a local module graph from. */
const MODULE_EXTENSIONS = new Set([".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"]);

/**
 * The files of a `command` server started in `cwd` with `command` and `args` (see the module's comment), by
 * given and real path; `projectRoot` bounds which files close their folder.
 */
export async function commandServerFiles(
  command: string,
  args: readonly string[],
  cwd: string,
  projectRoot: string,
  env: Readonly<Record<string, string>> = {},
): Promise<CommandServerFiles> {
  const named = new Set<string>();
  const candidates = [
    ...(command.includes("/") ? [command] : []),
    ...args.flatMap(pathsOfArgument),
    ...Object.values(env).flatMap(wordsOf),
  ];
  for (const candidate of candidates) {
    const path = resolve(cwd, candidate);
    if (await isFile(path)) named.add(path);
  }
  const files = new Set<string>(LAUNCHER_FILES.map((name) => resolve(cwd, name)));
  const folders = new Set<string>(LAUNCHER_FOLDERS.map((name) => resolve(cwd, name)));
  for (const folder of searchPathFolders(env)) {
    const path = resolve(cwd, folder);
    folders.add(path).add(await realPathOrSelf(path));
  }
  const realRoot = await realPathOrSelf(projectRoot);
  for (const file of named) {
    const real = await realPathOrSelf(file);
    for (const module of await moduleGraph(file)) files.add(module).add(await realPathOrSelf(module));
    files.add(file).add(real);
    if (covers(projectRoot, file) || covers(realRoot, real)) {
      folders.add(dirname(file)).add(dirname(real));
    }
  }
  // A grant that covers a file inside one of the folders reaches that folder: the folder says it once.
  const outside = [...files].filter((f) => ![...folders].some((folder) => covers(folder, f)));
  const words = [command, ...args.flatMap(pathsOfArgument)];
  const pythonImportsFromCwd = words.some((w) => PYTHON.test(w)) &&
    words.some((w) => w === "-m" || w === "-c");
  const importRoots = pythonImportsFromCwd ? [cwd, await realPathOrSelf(cwd)] : [];
  return { files: outside.sort(), folders: [...folders].sort(), importRoots: [...new Set(importRoots)] };
}

/** Each entry of the `env:` variables that name folders programs load code from (module comment). */
function searchPathFolders(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).filter(([name]) => SEARCH_PATH_VARIABLES.has(name))
    .flatMap(([, value]) => value.split(":")).filter((entry) => entry !== "");
}

/** The paths an argument may name: itself, the value of `--name=value`, and each of its words. */
function pathsOfArgument(arg: string): string[] {
  const eq = arg.startsWith("-") ? arg.indexOf("=") : -1;
  return [...(eq === -1 ? [arg] : [arg, arg.slice(eq + 1)]), ...wordsOf(arg)];
}

/**
 * The words of a command line or variable as a shell would split it, roughly: at blanks, quotes, `=`, `:`
 * (`PATH`-like lists) and the operators `;&|()<>`; a word that is no existing file is dropped later.
 */
function wordsOf(text: string): string[] {
  return text.split(/[\s'"`;&|()<>=:]+/).filter((word) => word !== "");
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    // Not a path at all (`-y`, a package name, a flag), or one the runtime's user cannot see.
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) return false;
    // `ENOTDIR`: a path through a file (`./server.js/x`), not a file.
    if (e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  }
}

/** The local modules of a JavaScript or TypeScript file; any other file is its own graph. */
async function moduleGraph(file: string): Promise<readonly string[]> {
  if (!MODULE_EXTENSIONS.has(extname(file))) return [file];
  try {
    return await scriptModuleFiles(file);
  } catch (e) {
    // A graph `deno info` cannot read (a bare `import "zod"` of a Node project): its folder still counts.
    if (!(e instanceof ToolFailure)) throw e;
    return [file];
  }
}
