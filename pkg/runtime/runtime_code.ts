/**
 * The runtime's own code and the `deno` executables, which no sandbox may write: code written there runs
 * outside every sandbox, as the runtime (`-A`, the bus credentials) at its next start, or as each later
 * sandbox's `deno` itself. A tool granted `write` on the checkout's `pkg/runtime/mcp` appended code that ran
 * in the runtime process with `NATS_PASSWORD` (red team 8 S11); a grant on the folder of the `deno` on PATH
 * was accepted too.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { denoExecutable } from "./deno_executable.ts";
import { realPathOrSelf } from "./grant_paths.ts";

/** The checkout's folders and files of code (and its installed packages), when run from a checkout. */
const CHECKOUT_CODE = ["pkg", "engine", "cli", "server", "node_modules", "main.ts", "deno.json", "deno.lock"];

/** Files and folders a `write` entry may neither cover nor, for the folders, lie inside. */
export interface RuntimeCode {
  /** The executables: this process's (the compiled binary, or the `deno` running a checkout) and the sandboxes'. */
  files: string[];
  /** The checkout's code folders and files (none for a compiled binary: its code is inside the executable). */
  folders: string[];
}

let cached: Promise<RuntimeCode> | undefined;

/** What {@linkcode RuntimeCode} holds for this process, under each path's given and real spelling. */
export function runtimeCode(): Promise<RuntimeCode> {
  cached ??= (async () => {
    const files = new Set<string>();
    for (const exe of [Deno.execPath(), denoExecutable()]) files.add(exe).add(await realPathOrSelf(exe));
    const folders = new Set<string>();
    if (!Deno.build.standalone) {
      const root = dirname(dirname(fileURLToPath(new URL("./", import.meta.url))));
      for (const name of CHECKOUT_CODE) {
        const path = join(root, name);
        folders.add(path).add(await realPathOrSelf(path));
      }
    }
    return { files: [...files].sort(), folders: [...folders].sort() };
  })();
  // A failed look-up (EACCES, ELOOP) is asked again by the next spawn, not kept for the process's life.
  cached.catch(() => cached = undefined);
  return cached;
}
