/**
 * Which `deno` runs a child process. From a checkout it is the `deno` running us. A compiled `compozy`
 * binary is not a `deno`: it starts its own runtime by running itself (cli/runtime_process.ts), but
 * sandboxes and the checks of tool code need a real `deno`, so they take the one on PATH, and say precisely
 * what is missing when there is none.
 *
 * `COMPOZY_AS_COMPILED=1` makes a run from a checkout take the compiled binary's paths: it is how tests
 * cover them without a compiled binary (`deno compile` needs to download Deno's runtime once).
 *
 * @module
 */

import { join } from "node:path";
import { searchFolders } from "../utils/search_path.ts";

/** Environment variable that makes a checkout behave as the compiled binary (for tests). */
export const AS_COMPILED_ENV = "COMPOZY_AS_COMPILED";

/** True in a `deno compile`d binary, or when {@link AS_COMPILED_ENV} stands in for one. */
export function isCompiledBinary(): boolean {
  return Deno.build.standalone || Deno.env.get(AS_COMPILED_ENV) === "1";
}

/**
 * The `deno` executable for child processes.
 *
 * @throws {Error} in a compiled binary when no `deno` is on PATH, saying what to install.
 * @example
 * ```ts
 * import { denoExecutable } from "./deno_executable.ts";
 * new Deno.Command(denoExecutable(), { args: ["--version"] });
 * ```
 */
export function denoExecutable(): string {
  if (!isCompiledBinary()) return Deno.execPath();
  const found = findOnPath(Deno.build.os === "windows" ? "deno.exe" : "deno");
  if (found) return found;
  throw new Error(
    "The compiled compozy binary runs tools with the deno on PATH, and there is none: install Deno 2.9 " +
      "(https://deno.land) or add its folder to PATH",
  );
}

function findOnPath(name: string): string | undefined {
  for (const dir of searchFolders()) {
    const candidate = join(dir, name);
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch {
      // Not in this folder; PATH entries that do not exist are common.
    }
  }
  return undefined;
}
