/**
 * Checks a tool's `read` and `write` grants against the file system when its sandbox starts.
 *
 * Deno checks a path permission on the path as the code spells it, without resolving symlinks: a tool
 * granted `data/` reads `/etc/hostname` through `data/etc_link -> /etc`. So before a process starts, each
 * granted folder is walked and a symlink inside it whose target lies outside it is refused. A grant that is
 * itself a symlink is granted under both names (the one the config uses and its real path), and checked by
 * its real path.
 *
 * The project's `.compozy/` store, its `.env*` files (every name starting with `.env`: `.env.local`, an editor's
 * `.env~`, direnv's `.envrc`, red team 7 R6), the `env_file` its compozy.yaml names under any other name
 * (`secrets.env`, red team 7 R3) and `compozy.yaml` are never granted: a list entry covering
 * one is refused, and a `true` grant gets Deno's `--deny-read`/`--deny-write` for them. That holds for every
 * project a tool may belong to, not only the nearest: each folder above the tool (or the tool's own) that
 * holds a `compozy.yaml`, the project a bundle was unpacked in (`<project>/.compozy/deployments/<sha256>/`
 * has a `compozy.yaml` of its own, and protecting only that one left the server's `.env` and NATS
 * passwords readable: red team 4 F3), and the roots the stack names to the runtime
 * ({@linkcode configureProtectedRoots}). A protected folder that holds another root (the server's `.compozy/`
 * holds the deployment being served) is protected entry by entry, all but the one leading to that root.
 * `compozy validate` and a deployment's check refuse the same grants before anything runs
 * (engine/domain/project/check_tool_permissions.ts).
 *
 * A protected path that is a symlink (or lies under one) is protected under its real path too: the link's
 * target is where the secrets are (red team 8, S2). Another link to the same target elsewhere, not under a
 * granted folder, is not known to the sandbox.
 *
 * What this cannot catch: a symlink created inside a granted folder after the sandbox started, by another
 * process (a tool cannot create one: Deno requires full read and write access for `Deno.symlink`); a hard
 * link to a file outside (it is the file itself, not a pointer to it); a mount point inside the folder.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import type { Grant, SandboxPermissions } from "./permissions.ts";
import { covers, MAX_WALKED_ENTRIES, scanLinks } from "./link_scan.ts";
import { parse as parseYaml } from "yaml";
import { ToolFailure } from "./tool_failure.ts";

export { covers };

let configuredRoots: readonly string[] = [];
let configuredFiles: readonly string[] = [];

/** The environment variable that names them to the runtime, separated by the path delimiter (`:`). */
export const PROTECTED_ROOTS_ENV = "COMPOZY_PROTECTED_ROOTS";

/**
 * Names the project roots whose protected files no sandbox may reach, whatever the tool (the runtime sets
 * them once at start from COMPOZY_PROTECTED_ROOTS: the project the stack serves and the one it runs in).
 */
export function configureProtectedRoots(roots: readonly string[]): void {
  configuredRoots = [...new Set(roots.filter(Boolean).map((r) => resolve(r)))].sort();
}

/**
 * Names files of the runtime's own that no sandbox may reach, whatever its grants: the NATS credentials file
 * it connects with (`NATS_CREDS`: the JWT and seed of a bus user, the engine's under `--role all`). The
 * runtime knows that path from its environment; no project names it, so without this a `read: true` tool,
 * or one whose list covers its folder, read the seed (outside break attempt, H2).
 */
export function configureProtectedFiles(files: readonly (string | undefined)[]): void {
  configuredFiles = [...new Set(files.filter((f): f is string => !!f).map((f) => resolve(f)))].sort();
}

const PROJECT_FILE = "compozy.yaml";

/** Grants as the sandbox gets them, and what a `true` grant must still be denied. */
export interface ResolvedGrants {
  permissions: SandboxPermissions;
  /** Paths for `--deny-read` and `--deny-write` (the project's protected files, when a grant is `true`). */
  denyRead: readonly string[];
  denyWrite: readonly string[];
}

/**
 * Resolves and checks the `read`/`write` grants of a tool whose module is in `toolDir`. `alsoProtected`
 * adds paths never to grant (the project's `env_file`, which only the project config names).
 *
 * @throws {ToolFailure} `tool_permission_denied` for a grant covering a protected file, a symlink leading
 * out of a granted folder, or a granted folder too large to check.
 */
export async function resolveGrants(
  p: SandboxPermissions,
  toolDir: string,
  alsoProtected: readonly string[] = [],
): Promise<ResolvedGrants> {
  // Most tools have no path grants: nothing to resolve, and no reason to look for the project.
  if (p.read !== true && p.write !== true && p.read.length === 0 && p.write.length === 0) {
    return { permissions: p, denyRead: [], denyWrite: [] };
  }
  if (p.read === true && p.write === true) {
    // Deno lets code with both unscoped create symlinks despite --deny-read/--deny-write, and a link to a
    // denied file reads and writes it (outside break attempt, H4). `compozy validate` and every project load
    // refuse `write: true` already; this holds for callers that skip them.
    throw denied(
      "write",
      "true",
      "with read: true it would let the tool create symlinks past the files it is denied; list the folders it writes",
    );
  }
  const roots = [...new Set([...configuredRoots, ...await projectRoots(toolDir)])];
  const protectedPaths = await withRealPaths([...await rootsProtectedPaths(roots), ...alsoProtected]);
  const read = await resolveGrant("read", p.read, protectedPaths);
  const write = await resolveGrant("write", p.write, protectedPaths);
  return {
    permissions: { ...p, read, write },
    denyRead: p.read === true ? protectedPaths : [],
    denyWrite: p.write === true ? protectedPaths : [],
  };
}

/** The project roots whose protected files code in `dir` may not reach: its projects and the configured ones. */
export async function protectedRoots(dir: string): Promise<string[]> {
  return [...new Set([...configuredRoots, ...await projectRoots(dir)])].sort();
}

/** The `.env*` files now at each of `roots` (the names a sandbox started earlier may not deny). */
export async function envFilesAt(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const root of roots) {
    try {
      for await (const entry of Deno.readDir(root)) {
        if (entry.name.startsWith(".env")) out.push(join(root, entry.name));
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return out;
}

/**
 * The entries now in each root's `.compozy/` that holds another root (a server's store holding the served
 * deployment), as {@linkcode rootsProtectedPaths} denies them one by one: a deploy unpacks the next project
 * there without restarting the runtime, so a sandbox started earlier, whose deny list names the entries of
 * its start, read the next deployment's files (outside break attempt brk37). Empty, and no file system
 * access, for roots that hold no deployment.
 */
export async function carvedOutPathsAt(roots: readonly string[]): Promise<string[]> {
  if (!roots.some((root) => roots.some((other) => other !== root && covers(join(root, ".compozy"), other)))) {
    return [];
  }
  const spellings = [...new Set([...roots, ...await Promise.all(roots.map(realPathOrSelf))])].sort();
  const out: string[] = [];
  for (const root of spellings) {
    const store = join(root, ".compozy");
    if (!spellings.some((other) => other !== store && covers(store, other))) continue;
    try {
      out.push(...await carveOut(store, spellings));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return out;
}

/**
 * Every path never granted to code in `dirs` (by real path too): the protected paths of each project the
 * folders belong to and of the roots the stack names ({@linkcode configureProtectedRoots}).
 */
export async function neverGrantedFor(dirs: readonly string[]): Promise<string[]> {
  const roots = new Set(configuredRoots);
  for (const dir of dirs) for (const root of await projectRoots(dir)) roots.add(root);
  return await rootsProtectedPaths([...roots].sort());
}

/** Why a `write` entry covering a file the sandbox loads (the tool's module graph, the sandbox's own modules)
 * is refused. Code written to one would be loaded unchecked: by a later dynamic import in the same process (a
 * rewritten module may `import()` a computed `data:` URL past the import policy), or by the next sandbox of
 * this tool or, for the sandbox's own modules, of every tool, with their grants and env. */
export const LOADED_FILE_WHY = "a module the sandbox loads: code written there would run unchecked";

/** Why a `write` entry reaching Deno's cache is refused: it holds the transpiled sandbox bootstrap. */
export const DENO_CACHE_WHY = "Deno's cache of the modules every sandbox loads";

/** A write to `entry` reaches `folder` when it covers it or lies inside it. */
export function coversOrInside(entry: string, folder: string): boolean {
  return covers(entry, folder) || covers(folder, entry);
}

/**
 * Keeps `paths` out of reach of the `write` grant: an entry that `reaches` one is refused, saying `why` for
 * the path it reached (`it covers <file>, …`); a `true` grant gets them all as `--deny-write` instead.
 * `compozy validate` refuses the same grants already (check_tool_permissions.ts `checkWritesMiss`); this holds
 * for callers that did not validate.
 *
 * @param reaches whether a write to `entry` reaches `path`: {@linkcode covers} for files,
 * {@linkcode coversOrInside} for folders, {@linkcode reachesProgramFolder} for the runtime's PATH.
 * @throws {ToolFailure} `tool_permission_denied` for such an entry.
 */
export function guardWrites(
  grants: ResolvedGrants,
  paths: readonly string[],
  why: (path: string) => string,
  reaches: (entry: string, path: string) => boolean = covers,
): ResolvedGrants {
  const write = grants.permissions.write;
  if (write === true) return { ...grants, denyWrite: [...new Set([...grants.denyWrite, ...paths])].sort() };
  for (const entry of write) {
    const hit = paths.find((path) => reaches(entry, path));
    if (hit !== undefined) throw denied("write", entry, why(hit));
  }
  return grants;
}

/**
 * Whether a `write` entry can plant a program in `folder`, one whose programs are found by name (a folder of
 * the runtime's PATH): the entry is the folder, holds it, or lies directly in it. An entry directly in it
 * names a program itself: granted `<folder>/x`, a tool that removes the folder `x` and writes a file there
 * has planted `x` (probed). An entry deeper inside cannot: PATH look-ups do not descend into folders, and
 * Deno checks every path a call touches against the grant (a rename's target, a removal, a `..`, which it
 * resolves first), so neither `<folder>/<name>` nor the folders between the entry and `folder` are
 * writable; a symlink, which could point the entry elsewhere, needs unscoped read and write, never granted.
 * Checked on each spelling of the entry (the grant holds the given and the real path), so an entry whose
 * real path lies directly in the folder (`<folder>/link/out`, `link` → another such folder) is refused too.
 */
export function reachesProgramFolder(entry: string, folder: string): boolean {
  return covers(entry, folder) || dirname(entry) === folder;
}

/** Why a `write` entry on or inside a project's `.git` is refused, wherever it is refused. */
export const GIT_FOLDER_WHY =
  "a project's git folder, whose hooks and config (core.hooksPath, core.fsmonitor) run as the developer at the next git command";

/**
 * The `.git` folder of each of `roots` and of each folder above them (a project inside a repository's
 * subfolder), under its given and real spelling. Writable, it is code the developer runs outside every
 * sandbox: a hook (`pre-commit`) or `core.fsmonitor` in `.git/config` runs at the next `git commit` or
 * `git status` in the project (outside break attempt sbx29).
 */
export async function projectGitFolders(roots: readonly string[]): Promise<string[]> {
  const folders = new Set<string>();
  for (const root of roots) {
    for (let d = resolve(root);; d = dirname(d)) {
      folders.add(join(d, ".git"));
      if (dirname(d) === d) break;
    }
  }
  return await withRealPaths([...folders]);
}

/**
 * Every project `dir` belongs to: each folder from `dir` up that holds a `compozy.yaml`, and for a deployment
 * (`<project>/.compozy/deployments/<sha256>/…`) the project it was unpacked in, which may have none.
 */
export async function projectRoots(dir: string): Promise<string[]> {
  const roots = new Set<string>();
  for (let d = resolve(dir);; d = dirname(d)) {
    if (await exists(join(d, PROJECT_FILE))) roots.add(d);
    const parent = dirname(d);
    if (basename(parent) === "deployments" && basename(dirname(parent)) === ".compozy") {
      roots.add(dirname(dirname(parent)));
    }
    if (parent === d) return [...roots].sort();
  }
}

/**
 * The protected paths of each of `roots`. A path that holds another root (a deployment under the server's
 * `.compozy/`) is replaced by its entries, recursively, but for the one leading to that root: the served
 * project's own files must stay readable to load its tools.
 */
export async function rootsProtectedPaths(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  // Each root under the spelling it was given and its real one: a protected entry that is itself a link
  // (`.compozy -> /data/store`) has its real path taken below, but `<real root>/.compozy/…` is a third
  // spelling Deno would let through when the root was reached through a link (red team 8 S12).
  const spellings = [...new Set([...roots, ...await Promise.all(roots.map(realPathOrSelf))])].sort();
  for (const root of spellings) {
    if (!await exists(root)) continue;
    for (const path of await protectedPaths(root)) out.push(...await carveOut(path, spellings));
  }
  if (Deno.build.os !== "windows") out.push(CONTROLLING_TERMINAL);
  out.push(...configuredFiles);
  return await withRealPaths(out);
}

/**
 * The process's controlling terminal: the one device under `/dev` that Deno does not hold back from
 * `read: true` (the others need all permissions). Sandboxes share `compozy dev`'s terminal, so a tool read
 * what the operator typed there (red team 8 S6). Protected like a project's secrets, for every grant.
 */
const CONTROLLING_TERMINAL = "/dev/tty";

/**
 * `paths` and the real path of each (sorted, once each). Deno checks a path as the code spells it: a `.env`
 * or `.compozy` that is a symlink (to a shared secrets file, a store on another disk) was denied under its
 * link's name only, and `read: true` read the secrets, the bus passwords and every execution's data through
 * the target's own path; a list entry naming the target's folder was granted (red team 8, S2).
 */
export async function withRealPaths(paths: readonly string[]): Promise<string[]> {
  const out = new Set(paths);
  for (const path of paths) out.add(await realPathOrSelf(path));
  return [...out].sort();
}

async function carveOut(path: string, roots: readonly string[]): Promise<string[]> {
  // A root itself is not denied wholesale: its own protected paths are.
  if (roots.includes(path)) return [];
  if (!roots.some((root) => covers(path, root))) return [path];
  const out: string[] = [];
  for await (const entry of Deno.readDir(path)) out.push(...await carveOut(join(path, entry.name), roots));
  return out;
}

/**
 * `.compozy/`, `compozy.yaml`, every `.env*` file and the `env_file` of the project at `root`. A `.env*` file
 * created after a sandbox started is not in that sandbox's deny list (Deno's flags name paths, not patterns):
 * the runner retires such a process before its next call ({@linkcode envFilesAt}).
 */
export async function protectedPaths(root: string): Promise<string[]> {
  const paths = new Set([join(root, ".compozy"), join(root, ".env"), join(root, PROJECT_FILE)]);
  for await (const entry of Deno.readDir(root)) {
    if (entry.name.startsWith(".env")) paths.add(join(root, entry.name));
  }
  const envFile = await envFileOf(root);
  if (envFile !== undefined) paths.add(envFile);
  return [...paths].sort();
}

/**
 * The `env_file` the project at `root` names in its compozy.yaml, as an absolute path, if any. Only the
 * project config knows it, and the runtime has no other way to learn it for every project a tool may belong
 * to (the one above it, a deployment's, the roots the stack names).
 *
 * @throws {ToolFailure} `tool_permission_denied` when compozy.yaml cannot be read or parsed: which file holds
 *   the project's secrets is then unknown, so no grant is given.
 */
async function envFileOf(root: string): Promise<string | undefined> {
  const file = join(root, PROJECT_FILE);
  let config: unknown;
  try {
    // Read as the loader reads it (engine/domain/project/yaml_source.ts): merge keys on, so an env_file set
    // through `<<: *shared` is the one protected (review R-S5), and aliases bounded alike.
    config = parseYaml(await Deno.readTextFile(file), { merge: true, maxAliasCount: 100_000 });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new ToolFailure(
      "tool_permission_denied",
      `Cannot tell which env_file ${file} names (${
        (e as Error).message
      }): no file grant is given until it reads`,
      { cause: e },
    );
  }
  const envFile = (config as { env_file?: unknown } | null)?.env_file;
  return typeof envFile === "string" && envFile !== "" ? resolve(root, envFile) : undefined;
}

async function resolveGrant(
  kind: "read" | "write",
  grant: Grant,
  protectedPaths: readonly string[],
): Promise<Grant> {
  if (grant === true) return true;
  const out = new Set<string>();
  for (const entry of grant) {
    const real = await realPathOrSelf(entry);
    for (const path of new Set([entry, real])) {
      const hit = protectedPaths.find((p) => covers(path, p) || covers(p, path));
      if (hit !== undefined) {
        throw denied(
          kind,
          entry,
          `it covers ${hit}: a project's .compozy/, .env* files, env_file and compozy.yaml, and the terminal (/dev/tty), are never granted`,
        );
      }
      out.add(path);
    }
    await refuseEscapingLinks(kind, entry, real);
  }
  return [...out].sort();
}

/** Refuses a granted folder holding a symlink whose target is not inside it (link_scan.ts). */
async function refuseEscapingLinks(kind: string, entry: string, realRoot: string): Promise<void> {
  const scan = await scanLinks(realRoot);
  if (scan.kind === "too_many") {
    throw denied(
      kind,
      entry,
      `it holds more than ${MAX_WALKED_ENTRIES} entries, too many to check for symlinks at each start; grant a smaller folder`,
    );
  }
  if (scan.kind === "escape") {
    throw denied(kind, entry, `the symlink ${scan.link} inside it points outside it, to ${scan.target}`);
  }
  if (kind === "write" && scan.kind === "ok" && scan.climbing !== undefined) {
    throw denied(
      kind,
      entry,
      `the symlink ${scan.climbing.link} inside it leads to "${scan.climbing.target}", a relative path that ` +
        "climbs: a tool that may write there can move the link to where it leads out; make the link's target " +
        "absolute or grant a folder without it",
    );
  }
  if (scan.kind === "special") {
    throw denied(
      kind,
      entry,
      `${
        shortPath(scan.path)
      } inside it is a named pipe or device, which a tool's open can block on; grant a folder without it`,
    );
  }
  if (scan.kind === "unreadable") {
    throw denied(
      kind,
      entry,
      `a folder inside it (${
        shortPath(scan.path)
      }) cannot be checked for symlinks (${scan.reason}); remove it or grant a folder without it`,
    );
  }
}

/** A path short enough for a message: one nested past the path length is thousands of characters. */
function shortPath(path: string): string {
  const MAX = 240;
  return path.length <= MAX ? path : `${path.slice(0, MAX / 2)}…${path.slice(-MAX / 2)}`;
}

/** The real path of `path`, or for a path that does not exist, its nearest existing parent's plus the rest. */
export async function realPathOrSelf(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    // A path that does not exist yet (a file the tool will write) has no symlinks to resolve but its parents'.
    return dirname(path) === path ? path : join(await realPathOrSelf(dirname(path)), basename(path));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function denied(kind: string, entry: string, why: string): ToolFailure {
  return new ToolFailure("tool_permission_denied", `Cannot grant ${kind} permission "${entry}": ${why}`, {
    details: { permission: kind, entry },
  });
}
