/**
 * Where the symlinks in the runtime's PATH folders lead. A look-up by name follows a link in a PATH folder to
 * wherever it points: `~/.local/bin/deploy -> ~/src/ops/bin/deploy` (as `ln -s`, `npm link` or `pipx` make
 * them) runs `~/src/ops/bin/deploy`. A tool granted `write` on `~/src/ops/bin` rewrote that program, and the
 * next `deploy` ran it as the operator; a grant on a folder covering a link's target can also remove a target
 * folder and leave a file in its place (sbx30, beyond the PATH folders themselves). So every hop of every such
 * link (each link it passes through, and the path it ends at, even a missing one a tool could create) is kept
 * from `write` grants: an entry covering one is refused.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { realPathOrSelf } from "./grant_paths.ts";

/** Linux's own bound on the links one look-up follows (`ELOOP` past it): a longer chain runs nothing. */
const MAX_HOPS = 40;

/**
 * Each hop of each symlink directly in `folders`, under the spelling it was reached by and with its folder's
 * real path (a folder on its way may be a link itself), sorted, each once.
 */
export async function pathLinkTargets(folders: readonly string[]): Promise<string[]> {
  const hops = new Set<string>();
  for (const folder of folders) {
    for (const name of await linkNames(folder)) {
      let link = join(folder, name);
      for (let hop = 0; hop < MAX_HOPS; hop++) {
        const next = await followLink(link);
        if (next === undefined) break;
        hops.add(next);
        link = next;
      }
    }
  }
  const out = new Set(hops);
  for (const hop of hops) {
    const parent = await realFolder(dirname(hop));
    if (parent !== undefined) out.add(join(parent, basename(hop)));
  }
  return [...out].sort();
}

/** The names of the symlinks in `folder`; none for a PATH entry that is missing, not a folder or unreadable. */
async function linkNames(folder: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(folder)) if (entry.isSymlink) names.push(entry.name);
  } catch (e) {
    // PATH often names folders that do not exist, and one the runtime cannot list runs nothing for it either.
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return [];
    if (e instanceof Deno.errors.PermissionDenied) return [];
    throw e;
  }
  return names;
}

/** Where the link at `path` points, as an absolute path; undefined when `path` is not a link (or is gone). */
async function followLink(path: string): Promise<string | undefined> {
  try {
    if (!(await Deno.lstat(path)).isSymlink) return undefined;
    return resolve(dirname(path), await Deno.readLink(path));
  } catch (e) {
    // The end of a chain: a target that does not exist (it is listed already: a tool could create it).
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return undefined;
    throw e;
  }
}

/** The real path of `folder`; undefined when a link loop or a closed folder on its way leaves it unresolved. */
async function realFolder(folder: string): Promise<string | undefined> {
  try {
    return await realPathOrSelf(folder);
  } catch (e) {
    // No look-up gets through such a path either, so its given spelling (kept) is the only one that counts.
    if (e instanceof Deno.errors.FilesystemLoop || e instanceof Deno.errors.PermissionDenied) {
      return undefined;
    }
    if (e instanceof Deno.errors.NotADirectory) return undefined;
    throw e;
  }
}
