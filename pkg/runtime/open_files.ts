/**
 * Regular files a sandbox process holds open, compared before and after each call.
 *
 * A call's end closes what it opened through the APIs the sandbox wraps (`Deno.open`, sockets, servers:
 * `call_scope.ts`), but not `node:fs` descriptors: Deno's Node layer opens them as descriptors of the process
 * through ops held inside its own modules (a named import of `openSync` is bound to Deno's function, not to
 * anything the sandbox can patch), and the worker cannot list its descriptors (`/proc/self/fd` needs
 * `--allow-all`). A descriptor left open stays usable by the next call of the warm process, maybe for
 * another execution: it reads a file the first call opened, even one deleted or renamed since. So the
 * runtime, which may read the sandbox's `/proc/<pid>/fd`, looks at what the process holds before and after
 * each call and retires the process when a regular file is open that was not open before: the call itself
 * has ended and keeps its result, the next call runs in another process.
 *
 * A file is known by its descriptor number and its identity (device and inode, of the open file, not of a
 * path): a descriptor closed and another file opened under its number is a new file. Pipes, sockets, devices
 * and event descriptors are not files a call could read another execution's data through (the runtime's own
 * channel is sealed, see `frame_cipher.ts`), and Deno opens and closes sockets of its own: they are ignored.
 *
 * Cost: listing every descriptor and `stat`ing each is ~250 µs for the ~30 a sandbox holds (measured at load
 * ~1), too much for every call of a 0.6 ms budget; counting them is one `stat` of the folder (~9 µs: Linux
 * 6.2 and later give the count as the folder's size; older kernels list the folder, ~40 µs). So each check
 * counts, checks the identity of the regular files, folders and devices open at the last accepted look (one
 * `stat` each: about ten for any tool, Deno's cache files and `/dev/null`), and lists only when either
 * changed. A call that closes a file, folder or device its module's load opened and opens a file leaves the
 * count as it was, and the new file lands on the freed number (the lowest free one): its identity tells it
 * apart. A call can close only the files it or its module opened (`node:fs` keeps a table per worker, see
 * `guardRawDescriptors` in `tool_worker.ts`; Deno's resources are closed by the call's end), so a file cannot
 * hide on the number of a pipe or socket it closed. Between calls Deno's own descriptors come and go (a
 * socket, `/etc/hosts` read for a name), and one the tool's code closes is not always followed (a named pipe,
 * see docs/runtime-sandbox.md): an open that code of an ended call completed between calls, which the worker
 * reports before the next call's code runs (`unsettled`), is looked for by a listing, never by the count
 * (~220 µs for a sandbox's 29 at load ~11, against 55–75 µs for a look that counts). The listing is bounded:
 * a sandbox holds at most its descriptor limit (`descriptor_limit.ts`, 128 by default: 1–2 ms for 114), and a
 * process found holding more (where the limit could not be set) is retired without being listed.
 *
 * Linux only: where `/proc` is not there (macOS) nothing is checked.
 *
 * @module
 */

/** A count no look matches: the next look lists. */
const UNTRUSTED = -1;

/** What was accepted at a process's last look: how many descriptors it held, and its regular files. */
interface Seen {
  /** {@linkcode UNTRUSTED} when the listing did not hold as many as the count before it. */
  count: number;
  /** Descriptor number → identity (`device:inode`) of the regular file open on it. */
  files: Map<number, string>;
  /**
   * The regular files, folders and devices open, by descriptor: a call that closes one and opens a file
   * leaves the count as it was, and the file takes the freed number. A folder opened by the module's load
   * with `fs.openSync(dir)` hid a file that way (outside break attempt breaker2, D2), and so did a device
   * (`/dev/zero`, which a tool may be granted).
   */
  watched: Map<number, string>;
}

export class OpenFileWatch {
  readonly #seen = new WeakMap<{ readonly pid: number }, Seen>();
  readonly #maxDescriptors: number;

  /**
   * @param maxDescriptors the most descriptors a sandbox may hold (its `RLIMIT_NOFILE`, see
   * descriptor_limit.ts): a process holding more is never listed. The limit keeps a sandbox below it; this
   * keeps the listing bounded where the limit could not be set (no `/bin/sh`).
   */
  constructor(maxDescriptors: number) {
    this.#maxDescriptors = maxDescriptors;
  }

  /**
   * Looks at the regular files `process` holds. The first look is the baseline (what the module's load and
   * Deno opened); each later one returns a description of a regular file open now that was not at the last
   * accepted look (the process must then be retired), or undefined, and is accepted then. At any look, a
   * process holding more descriptors than the bound is described as such, unlisted (retire it too).
   *
   * `list`: list the descriptors even when the count and the watched files are as accepted. The count
   * cannot tell a file opened from one while another descriptor closed: one of Deno's own, such as the
   * connection its `fetch` keeps for reuse, which the server closes. Within a call that is a limit (see
   * the module's documentation); for an open that code of an ended call completed between calls, which
   * the worker reports before the next call's code runs (`unsettled`), the runtime lists.
   */
  check(process: { readonly pid: number }, how: { list?: boolean } = {}): string | undefined {
    const count = descriptorCount(process.pid);
    if (count === undefined) return undefined;
    // Listing is one `stat` per descriptor on the runtime's thread: 19,000 opened by a module's load
    // stalled it 0.3–1 s per call (red team brk-sbx H3). Such a process is retired unlisted.
    if (count > this.#maxDescriptors) {
      return `it holds ${count} descriptors, more than the ${this.#maxDescriptors} a sandbox may hold`;
    }
    const seen = this.#seen.get(process);
    if (!how.list && seen && seen.count === count && stillOpen(process.pid, seen.watched)) return undefined;
    const open = openFilesAndFolders(process.pid);
    if (open === undefined) return undefined;
    if (seen) {
      for (const [fd, identity] of open.files) {
        if (seen.files.get(fd) !== identity) return `it holds ${describe(process.pid, fd)} open`;
      }
    }
    // The count stands for the listing only if the listing found as many. A descriptor open for a moment (a
    // thread of the process reads /sys/devices/system/cpu/online as it starts) was in the count but gone by
    // the listing: accepted, that count left room for a file opened later, which the next look, finding the
    // count unchanged, did not list (the flaky step "…completed between calls" of fd_leftovers_test.ts).
    // Not trusted, it makes the next look list.
    this.#seen.set(process, {
      count: open.listed === count ? count : UNTRUSTED,
      files: open.files,
      watched: open.watched,
    });
    return undefined;
  }
}

/**
 * How many descriptors the process holds, or undefined when `/proc` cannot tell (not Linux, or the process
 * has exited: there is nothing to check then).
 */
function descriptorCount(pid: number): number | undefined {
  try {
    // Linux 6.2 and later give the number of open descriptors as the folder's size; before, 0.
    const size = Deno.statSync(`/proc/${pid}/fd`).size;
    if (size > 0) return size;
    let count = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) count++;
    return count;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Whether each of `files` (regular files, folders and devices) is still open on its descriptor. */
function stillOpen(pid: number, files: Map<number, string>): boolean {
  for (const [fd, identity] of files) {
    try {
      const info = Deno.statSync(`/proc/${pid}/fd/${fd}`);
      if (`${info.dev}:${info.ino}` !== identity) return false;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  }
  return true;
}

/**
 * The regular files open in the process, and those with its folders and devices, by descriptor, and how
 * many descriptors were listed and still open when looked at; undefined when the process has exited.
 */
function openFilesAndFolders(
  pid: number,
): { files: Map<number, string>; watched: Map<number, string>; listed: number } | undefined {
  const files = new Map<number, string>();
  const watched = new Map<number, string>();
  let listed = 0;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`/proc/${pid}/fd`)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  for (const entry of entries) {
    let info: Deno.FileInfo;
    try {
      // Follows the descriptor to the open file itself (even one deleted since it was opened).
      info = Deno.statSync(`/proc/${pid}/fd/${entry.name}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // closed since the listing
      throw e;
    }
    listed++;
    const identity = `${info.dev}:${info.ino}`;
    if (info.isFile) files.set(Number(entry.name), identity);
    if (info.isFile || info.isDirectory || info.isCharDevice || info.isBlockDevice) {
      watched.set(Number(entry.name), identity);
    }
  }
  return { files, watched, listed };
}

function describe(pid: number, fd: number): string {
  try {
    return `descriptor ${fd} (${Deno.readLinkSync(`/proc/${pid}/fd/${fd}`)})`;
  } catch {
    return `descriptor ${fd} (closed since)`; // only its name is lost
  }
}
