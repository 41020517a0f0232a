/**
 * Finds a symlink inside a granted folder that leads out of it (grant_paths.ts refuses such a grant: Deno
 * checks a path as the code spells it, so `data/etc_link/hostname` would read `/etc/hostname`), and a named
 * pipe or device inside it: opening a FIFO no one writes blocks one of Deno's file threads until a
 * writer comes, so a tool that left 600 such opens pending as its call returned had its warm process's next
 * calls wait behind them until their time limit (outside break attempts brk35, brk36). A tool cannot make
 * one (Deno and `node:fs` have no `mkfifo`), so the start scan sees every one its grant can reach.
 *
 * Why a scan at start and not a check at use: a check at use would have to wrap every API that takes a path
 * (the `Deno` namespace, Node's `fs`, which Deno implements on its own ops, `fetch` of `file:` URLs, …) and
 * resolve each path before Deno opens it; the kernel's own answer (Landlock, `openat2` with
 * `RESOLVE_BENEATH`) needs native code in the sandbox. The scan is one place, at start, before any tool code.
 *
 * What keeps it bounded: at most {@linkcode MAX_WALKED_ENTRIES} entries are looked at, with synchronous
 * directory reads (a quarter of the cost of the async iterator) in slices of {@linkcode SLICE_ENTRIES}
 * between which the event loop runs; concurrent starts of the same folder share one scan; and a result
 * is kept with the modification and change times of every folder the scan read, so a later start only
 * `lstat`s those folders. Adding, removing or renaming an entry (a symlink made or replaced) changes its
 * folder's times. A folder whose times are within {@linkcode RACY_MS} of the scan is not trusted (as git
 * treats a "racily clean" index entry): a symlink made in the same clock tick as the read would leave the
 * times unchanged, so an acceptance that read one is not kept. A refusal always is: kept stale, it can
 * only refuse a grant, never let a link by.
 *
 * @module
 */
import { dirname, isAbsolute, join, resolve, sep } from "node:path";

/** Folders with more entries than this are refused rather than walked at every sandbox start. */
export const MAX_WALKED_ENTRIES = 20_000;
/** Entries handled between two turns of the event loop: the runtime keeps serving other calls. */
const SLICE_ENTRIES = 512;
/** Times closer than this to the scan may hide a change made in the same tick (coarse file system clocks). */
const RACY_MS = 2_000;
/** Folders whose results are kept; the oldest goes first. */
const MAX_KEPT = 64;

export type LinkScan =
  /**
   * `climbing`: the first symlink inside whose target is relative and climbs (`..`): it leads inside where it
   * is, but a tool that may write in the folder can move it to where it leads out (see {@linkcode walk}).
   */
  | { kind: "ok"; climbing?: { link: string; target: string } }
  | { kind: "too_many" }
  | { kind: "escape"; link: string; target: string }
  | { kind: "special"; path: string }
  | { kind: "unreadable"; path: string; reason: string };

interface Kept {
  result: LinkScan;
  /** Every folder read, with its `lstat` fingerprint at the time. */
  folders: Map<string, string>;
}

const kept = new Map<string, Kept>();
const running = new Map<string, Promise<LinkScan>>();

/**
 * The first symlink inside `realRoot` (a real path) whose target is outside it or named pipe or device inside it,
 * `too_many` when the folder holds more than {@linkcode MAX_WALKED_ENTRIES} entries, else `ok`. A path
 * that is not a folder is `ok`: there is nothing inside it (a grant naming a device itself, `/dev/null`,
 * is the user's choice).
 */
export function scanLinks(realRoot: string): Promise<LinkScan> {
  const pending = running.get(realRoot);
  if (pending) return pending;
  const scan = keptResult(realRoot).then((result) => result ?? walk(realRoot)).finally(() =>
    running.delete(realRoot)
  );
  running.set(realRoot, scan);
  return scan;
}

/** The kept result for `root`, when none of the folders it read changed since. */
async function keptResult(root: string): Promise<LinkScan | undefined> {
  const entry = kept.get(root);
  if (!entry) return undefined;
  let n = 0;
  for (const [folder, print] of entry.folders) {
    if (++n % SLICE_ENTRIES === 0) await nextTurn();
    if (fingerprint(folder) !== print) {
      kept.delete(root);
      return undefined;
    }
  }
  return entry.result;
}

async function walk(root: string): Promise<LinkScan> {
  const started = Date.now();
  const folders = new Map<string, string>();
  let racy = false;
  const finish = (result: LinkScan): LinkScan => {
    // A refusal is kept even when a folder was racy: a stale one can only refuse a grant, never let a link by.
    if (!racy || result.kind !== "ok") keep(root, { result, folders });
    return result;
  };
  if (!folderState(root, started)) return { kind: "ok" }; // not a folder, or not there: nothing inside it
  const pending = [root];
  let seen = 0;
  // A relative target is resolved from where the link is, and renaming a link (or a folder holding one) is
  // writing in the granted folder: `out/docs/notes -> ../notes.txt` leads to `out/notes.txt`, and moved to
  // `out/notes` it led to the file beside `out`, which a tool read and wrote through it (outside break attempt
  // brk37). A target without `..` stays below the link wherever it is moved, an absolute one does not move.
  let climbing: { link: string; target: string } | undefined;
  while (pending.length > 0) {
    const dir = pending.pop()!;
    try {
      const state = folderState(dir, started);
      if (!state) {
        // Replaced or removed while the scan ran: what it held is gone; the next start scans again.
        racy = true;
        continue;
      }
      folders.set(dir, state.print);
      racy ||= state.racy;
      for (const e of Deno.readDirSync(dir)) {
        if (++seen > MAX_WALKED_ENTRIES) return finish({ kind: "too_many" });
        if (seen % SLICE_ENTRIES === 0) await nextTurn();
        const path = join(dir, e.name);
        if (e.isDirectory) pending.push(path);
        else if (e.isSymlink) {
          const target = linkTarget(path);
          if (!covers(root, target)) return finish({ kind: "escape", link: path, target });
          if (climbing === undefined) {
            const written = Deno.readLinkSync(path);
            if (!isAbsolute(written) && written.split(/[\\/]/).includes("..")) {
              climbing = { link: path, target: written };
            }
          }
        } else if (!e.isFile && blocksOnOpen(path)) return finish({ kind: "special", path });
      }
    } catch (e) {
      // A folder or link removed while it was read: thrown as before (the call fails and is retried).
      if (e instanceof Deno.errors.NotFound) throw e;
      // A folder the scan cannot read could hold a link it cannot see: a tool granted `write` nested folders
      // past the path length (PATH_MAX) by renaming one chain into another, and the scan's `lstat` failed
      // "File name too long" at every later start, uncaught (issue 10, sbx). Refused, and kept so.
      return finish({ kind: "unreadable", path: dir, reason: whyUnreadable(e) });
    }
  }
  return finish(climbing === undefined ? { kind: "ok" } : { kind: "ok", climbing });
}

/** The system's word for why a folder could not be read (`ENAMETOOLONG`), not its message, which holds the path. */
function whyUnreadable(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : error instanceof Error ? error.name : String(error);
}

function keep(root: string, entry: Kept): void {
  kept.delete(root);
  kept.set(root, entry);
  if (kept.size > MAX_KEPT) kept.delete(kept.keys().next().value!);
}

/** Kind, inode and times of `path` itself (not what it leads to); undefined when it is gone. */
function fingerprint(path: string): string | undefined {
  const info = lstatOrUndefined(path);
  return info && printOf(info);
}

function printOf(info: Deno.FileInfo): string {
  const kind = info.isDirectory ? "d" : info.isSymlink ? "l" : "f";
  return `${kind}:${info.dev}:${info.ino}:${info.mtime?.getTime()}:${info.ctime?.getTime()}`;
}

/**
 * The fingerprint of a folder, and whether its times are too close to `started` to show a later change (a
 * file system without times can never show one); undefined when `path` is not a folder (or is gone).
 */
function folderState(path: string, started: number): { print: string; racy: boolean } | undefined {
  const info = lstatOrUndefined(path);
  if (!info?.isDirectory) return undefined;
  const times = [info.mtime?.getTime(), info.ctime?.getTime()];
  return {
    print: printOf(info),
    racy: times.some((t) => t === undefined || t >= started - RACY_MS),
  };
}

function lstatOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * A named pipe or a device: opening one may wait for a writer or the device. A socket is not (its open
 * fails at once, and a tool granted one connects to it: abstract_socket_test.ts).
 */
function blocksOnOpen(path: string): boolean {
  const info = lstatOrUndefined(path);
  return info !== undefined &&
    (info.isFifo === true || info.isCharDevice === true || info.isBlockDevice === true);
}

/** Where a symlink leads: its real path, or for a dangling link the path it names. */
function linkTarget(link: string): string {
  try {
    return Deno.realPathSync(link);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return resolve(dirname(link), Deno.readLinkSync(link));
  }
}

/** `inner` is `outer` or inside it. */
export function covers(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}

function nextTurn(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}
