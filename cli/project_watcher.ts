/**
 * Watches a project directory for `compozy dev --watch`: changes are batched (an editor's save is several
 * events) and reported once per quiet period. Run-time state and build output are ignored.
 *
 * @module
 */
import { basename, relative, sep } from "node:path";

const IGNORED = [".compozy", "dist", "node_modules", ".git"];

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

export function watchProject(
  dir: string,
  onChange: (paths: string[]) => void,
  quietMs = 200,
): ProjectWatcher {
  const watcher = Deno.watchFs(dir, { recursive: true });
  let pending = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    for await (const event of watcher) {
      const relevant = event.paths.filter((p) => {
        const first = relative(dir, p).split(sep)[0];
        return !IGNORED.includes(first) && !isEditorTempFile(p);
      });
      if (relevant.length === 0 || event.kind === "access") continue;
      relevant.forEach((p) => pending.add(p));
      clearTimeout(timer);
      timer = setTimeout(() => {
        const paths = [...pending];
        pending = new Set();
        onChange(paths);
      }, quietMs);
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
