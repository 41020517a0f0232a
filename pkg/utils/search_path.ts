/**
 * The folders Compozy looks programs up in by name: the absolute entries of PATH, in order. A relative entry
 * (`.`, an empty one, which POSIX reads as `.`, or `bin`) names a different folder in each working folder:
 * with `.` on PATH the engine started the `nats-server` lying in the folder it ran in, and with `bin` the
 * compiled binary's `deno` was `bin/deno` (found from the runtime's folder, then run from each tool's folder),
 * folders a tool may be granted `write` on, where none of the runtime's PATH checks looked (outside break
 * attempt sbx29, left open there). So relative entries are never searched, and {@linkcode dropRelativeEntries}
 * takes them out of the process's own PATH at start, for the children it starts too.
 *
 * @module
 */
import { delimiter, isAbsolute } from "node:path";

/** The absolute entries of `path` (this process's PATH by default), in order, each once. */
export function searchFolders(path: string = Deno.env.get("PATH") ?? ""): string[] {
  return [...new Set(path.split(delimiter).filter((entry) => isAbsolute(entry)))];
}

/**
 * Removes the relative entries from this process's PATH, so that neither its own look-ups nor the processes it
 * starts (which inherit its environment) search them, and returns them (empty when there were none), for the
 * caller's one warning. A PATH of relative entries only is left empty: programs are then found by path only.
 */
export function dropRelativeEntries(): string[] {
  const path = Deno.env.get("PATH");
  if (path === undefined || path === "") return [];
  const entries = path.split(delimiter);
  const relative = entries.filter((entry) => !isAbsolute(entry));
  if (relative.length > 0) Deno.env.set("PATH", entries.filter((entry) => isAbsolute(entry)).join(delimiter));
  return relative;
}

/** The one line said when {@linkcode dropRelativeEntries} removed entries. */
export function relativeEntriesWarning(relative: readonly string[]): string {
  const named = [...new Set(relative)].map((entry) => JSON.stringify(entry)).join(", ");
  return `PATH holds relative entries (${named}), which name a different folder in each working folder: ` +
    "they are ignored, and programs are looked up in PATH's absolute folders only";
}
