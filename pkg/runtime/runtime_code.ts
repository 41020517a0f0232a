/**
 * The runtime's own code and the `deno` executables, which no sandbox may write: code written there runs
 * outside every sandbox, as the runtime (`-A`, the bus credentials) at its next start, or as each later
 * sandbox's `deno` itself. A tool granted `write` on the checkout's `pkg/runtime/mcp` appended code that ran
 * in the runtime process with `NATS_PASSWORD` (red team 8 S11); a grant on the folder of the `deno` on PATH
 * was accepted too.
 *
 * The folders of the runtime's PATH are kept from every `write` grant too (entries that cover one or lie
 * directly in one: grant_paths.ts `reachesProgramFolder`): the runtime finds `nats-server` and, in the
 * compiled binary, `deno` there, and an operator's shell runs whatever lies first on it. A tool granted `write` on `~/.local/bin` (before `/bin`) planted `sh`
 * and ran as the operator at the next start (outside break attempt brk-sbx3). Where a symlink in a PATH folder
 * leads is kept the same way (path_links.ts). Relative PATH entries are not listed: nothing is looked up in
 * them (pkg/utils/search_path.ts).
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { denoCacheDir } from "./deno_cache_dir.ts";
import { denoExecutable } from "./deno_executable.ts";
import {
  coversOrInside,
  DENO_CACHE_WHY,
  GIT_FOLDER_WHY,
  guardWrites,
  LOADED_FILE_WHY,
  projectGitFolders,
  reachesProgramFolder,
  realPathOrSelf,
  type ResolvedGrants,
} from "./grant_paths.ts";
import { searchFolders } from "../utils/search_path.ts";
import { pathLinkTargets } from "./path_links.ts";

/** The checkout's folders and files of code (and its installed packages), when run from a checkout. */
const CHECKOUT_CODE = ["pkg", "engine", "cli", "server", "node_modules", "main.ts", "deno.json", "deno.lock"];

/** Files and folders a `write` entry may neither cover nor, for the folders, lie inside. */
export interface RuntimeCode {
  /**
   * The executables: this process's (the compiled binary, or the `deno` running a checkout), the sandboxes',
   * and the `nats-server` named by NATS_SERVER_BIN.
   */
  files: string[];
  /** The checkout's code folders and files (none for a compiled binary: its code is inside the executable). */
  folders: string[];
  /** The absolute folders of the runtime's PATH, as it was when first asked. */
  pathFolders: string[];
  /** Each hop of each symlink in those folders (path_links.ts): what a look-up by name runs. */
  pathLinks: string[];
}

/** Why a `write` entry covering where a symlink in a PATH folder leads is refused, wherever it is refused. */
export const RUNTIME_PATH_LINK_WHY =
  "where a symlink in a folder of the runtime's PATH leads: a program run by name, as the operator";

/** Why a `write` entry on or inside a folder of the runtime's PATH is refused, wherever it is refused. */
export const RUNTIME_PATH_WHY =
  "a folder of the runtime's PATH, whose programs run outside every sandbox (as the operator, by name)";

/** Why a `write` entry on or inside the checkout's code is refused, wherever it is refused. */
export const RUNTIME_CODE_WHY = "the runtime's own code, which runs outside every sandbox";

let cached: Promise<RuntimeCode> | undefined;

/**
 * Keeps a sandbox's `write` grant from every file that is code run elsewhere (grant_paths.ts `guardWrites`,
 * in this order): `loaded`, the files the sandbox loads, and the executables; Deno's cache, which holds the
 * transpiled sandbox bootstrap every process loads (red team 4 F6); the runtime's own code (red team 8 S11);
 * the folders of its PATH and where their symlinks lead (brk-sbx3); the git folders of the projects of
 * `roots` and above them (sbx29).
 *
 * @throws {ToolFailure} `tool_permission_denied` for an entry reaching one.
 */
export async function guardRuntimeWrites(
  grants: ResolvedGrants,
  loaded: readonly string[],
  roots: readonly string[],
): Promise<ResolvedGrants> {
  const code = await runtimeCode();
  const reach = (why: string) => (path: string) => `it reaches ${path}, ${why}`;
  let guarded = guardWrites(
    grants,
    [...loaded, ...code.files],
    (file) => `it covers ${file}, ${LOADED_FILE_WHY}`,
  );
  guarded = guardWrites(guarded, [await denoCacheDir()], reach(DENO_CACHE_WHY), coversOrInside);
  guarded = guardWrites(guarded, code.folders, reach(RUNTIME_CODE_WHY), coversOrInside);
  guarded = guardWrites(guarded, code.pathFolders, reach(RUNTIME_PATH_WHY), reachesProgramFolder);
  guarded = guardWrites(guarded, code.pathLinks, (link) => `it covers ${link}, ${RUNTIME_PATH_LINK_WHY}`);
  return guardWrites(guarded, await projectGitFolders(roots), reach(GIT_FOLDER_WHY), coversOrInside);
}

/** What {@linkcode RuntimeCode} holds for this process, under each path's given and real spelling. */
export function runtimeCode(): Promise<RuntimeCode> {
  cached ??= (async () => {
    const files = new Set<string>();
    // NATS_SERVER_BIN names the nats-server `compozy dev` starts, as the operator, when it lies outside PATH.
    const natsServer = Deno.env.get("NATS_SERVER_BIN");
    const executables = [Deno.execPath(), denoExecutable(), ...(natsServer ? [resolve(natsServer)] : [])];
    for (const exe of executables) files.add(exe).add(await realPathOrSelf(exe));
    const folders = new Set<string>();
    if (!Deno.build.standalone) {
      const root = dirname(dirname(fileURLToPath(new URL("./", import.meta.url))));
      for (const name of CHECKOUT_CODE) {
        const path = join(root, name);
        folders.add(path).add(await realPathOrSelf(path));
      }
    }
    const pathFolders = new Set<string>();
    for (const dir of searchFolders()) pathFolders.add(resolve(dir)).add(await realPathOrSelf(resolve(dir)));
    return {
      files: [...files].sort(),
      folders: [...folders].sort(),
      pathFolders: [...pathFolders].sort(),
      pathLinks: await pathLinkTargets([...pathFolders]),
    };
  })();
  // A failed look-up (EACCES, ELOOP) is asked again by the next spawn, not kept for the process's life.
  cached.catch(() => cached = undefined);
  return cached;
}
