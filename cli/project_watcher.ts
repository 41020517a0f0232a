/**
 * Watches a project directory for `compozy dev --watch`: changes are batched (an editor's save is several
 * events) and reported once per quiet period. Only the project's configuration and code count: run-time
 * state, build output, version control, editors' temporary files and every other file (notes, a README, data
 * a tool reads or writes at run time) reload nothing.
 *
 * @module
 */
import { basename, dirname, extname, relative, sep } from "node:path";
import type { Project } from "../engine/domain/project/types.ts";
import { covers } from "../pkg/runtime/link_scan.ts";
import { normalizePermissions } from "../pkg/runtime/permissions.ts";

const IGNORED = [".compozy", "dist", "node_modules", ".git"];

/**
 * What a changed file is to the project: `config` (YAML definitions, the env file) reloads the definitions;
 * `code` (a module a tool may import) restarts the runtime too.
 */
export type ChangeKind = "config" | "code";

export interface ProjectChange {
  path: string;
  kind: ChangeKind;
}

const CONFIG_EXTENSIONS = new Set([".yaml", ".yml"]);
const CODE_EXTENSIONS = new Set(
  [".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs", ".json", ".wasm"],
);

/**
 * The kind of change `path` is, or undefined for a file that is neither configuration nor code. `envFile` is
 * the project's env file (`env_file`, default `.env`): templates read it, so it is configuration.
 */
export function changeKind(path: string, envFile?: string): ChangeKind | undefined {
  if (isEditorTempFile(path)) return undefined;
  const extension = extname(path).toLowerCase();
  if (CONFIG_EXTENSIONS.has(extension) || path === envFile || basename(path) === ".env") return "config";
  if (CODE_EXTENSIONS.has(extension)) return "code";
  return undefined;
}

/**
 * Files editors write beside the one being saved: swap and backup files (vim `.x.swp`, `x~`, `4913`), emacs
 * locks and autosaves (`.#x`, `#x#`), atomic-save temporaries (`x.tmp`, `x.ts.tmp.1234`, JetBrains
 * `x___jb_tmp___`), and `.DS_Store`. A change to one of them is not a change of the project.
 */
export function isEditorTempFile(path: string): boolean {
  const name = basename(path);
  return /^\.#|^#.*#$|~$|\.sw[a-p]$|^4913$|\.tmp(\.\d+)?$|\.tmp\.[^.]+$|___jb_(tmp|old)___$|^\.DS_Store$|^\.goutputstream-/
    .test(name);
}

export interface ProjectWatcher {
  stop(): void;
}

export interface WatchOptions {
  /** The project's env file, asked at each change (a reload may have changed `env_file`). */
  envFile?: () => string;
  /**
   * Paths whose changes reload nothing (see {@linkcode writeGranted}), asked at each change (a reload may
   * have changed the grants).
   */
  ignored?: () => readonly string[];
  /**
   * The folders of the loaded project's files (see {@linkcode projectFolders}), asked at each change: a
   * folder among them, or one above them, moved, removed or put back is a change of the files it holds.
   */
  folders?: () => { config: readonly string[]; code: readonly string[] };
  quietMs?: number;
}

export function watchProject(
  dir: string,
  onChange: (changes: ProjectChange[]) => void,
  options: WatchOptions = {},
): ProjectWatcher {
  const watcher = Deno.watchFs(dir, { recursive: true });
  let pending = new Map<string, ChangeKind>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    for await (const event of watcher) {
      if (event.kind === "access") continue;
      const envFile = options.envFile?.();
      const ignored = options.ignored?.() ?? [];
      let relevant = false;
      for (const path of event.paths) {
        if (IGNORED.includes(relative(dir, path).split(sep)[0])) continue;
        if (ignored.some((folder) => covers(folder, path))) continue;
        const kind = changeKind(path, envFile) ??
          folderChangeKind(event.kind, path, dir, options.folders?.());
        if (!kind) continue;
        pending.set(path, kind);
        relevant = true;
      }
      if (!relevant) continue;
      clearTimeout(timer);
      timer = setTimeout(() => {
        const changes = [...pending].map(([path, kind]) => ({ path, kind }));
        pending = new Map();
        onChange(changes);
      }, options.quietMs ?? 200);
    }
  })().catch(() => {
    // The watcher was closed.
  });
  return {
    stop() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}

/**
 * The kind of change of a folder `path` that was created, moved or removed: that of the project files it
 * holds or held. Its name has no extension to tell, and once moved or removed it cannot be read: without this,
 * `mv tools tools.old` reloaded nothing, and dev ran on with tools it could no longer load, saying nothing.
 */
function folderChangeKind(
  event: Deno.FsEvent["kind"],
  path: string,
  dir: string,
  folders: { config: readonly string[]; code: readonly string[] } | undefined,
): ChangeKind | undefined {
  if (!folders || path === dir || !["create", "remove", "rename"].includes(event)) return undefined;
  if (folders.code.some((folder) => covers(path, folder))) return "code";
  if (folders.config.some((folder) => covers(path, folder))) return "config";
  return undefined;
}

/** The folders holding `project`'s workflow files (`config`) and its tools' modules (`code`), absolute. */
export function projectFolders(project: Project): { config: string[]; code: string[] } {
  const workflows = [...project.workflows.values()];
  const tools = [...project.tools.values(), ...workflows.flatMap((w) => [...w.tools.values()])];
  return {
    config: [...new Set(workflows.map((w) => w.dir))].sort(),
    code: [...new Set(tools.map((tool) => dirname(tool.executePath)))].sort(),
  };
}

/**
 * Every path a tool or a `script` MCP server of `project` may write (its `write` list, absolute). What a tool
 * writes there is its data, not the project's code or configuration: the sandbox refuses a `write` entry that
 * covers a module it loads, and `compozy validate` one that covers a tool module or a YAML file. Watched as
 * code, each write restarted the runtime: a tool writing a `.json` report every 300 ms restarted it 103 times
 * in 40 s, and other workflows' calls waited ~30 s or failed `runtime_unavailable` (red team 8, S3).
 */
export function writeGranted(project: Project): string[] {
  const out = new Set<string>();
  const add = (permissions: Parameters<typeof normalizePermissions>[0], base: string) => {
    if (!Array.isArray(permissions?.write)) return;
    try {
      const { write } = normalizePermissions({ write: permissions.write }, base);
      if (write !== true) { for (const path of write) out.add(path); }
    } catch {
      // A grant the sandbox refuses is never used to write anything: nothing to ignore for it.
    }
  };
  const tools = [
    ...project.tools.values(),
    ...[...project.workflows.values()].flatMap((w) => [...w.tools.values()]),
  ];
  for (const tool of tools) add(tool.permissions, dirname(tool.executePath));
  for (const server of project.mcp.values()) {
    if (typeof server.script === "string") add(server.permissions, project.root);
  }
  return [...out].sort();
}
