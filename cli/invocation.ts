/**
 * How the user runs this CLI, for the commands we suggest: `compozy` is the compiled binary; from a checkout
 * of the repository there is no `compozy` on PATH, and `deno task compozy` (run anywhere in the checkout) is
 * the command that works.
 *
 * @module
 */
import { isCompiledBinary } from "../pkg/runtime/deno_executable.ts";

export function cliCommand(): string {
  return isCompiledBinary() ? "compozy" : "deno task compozy";
}
