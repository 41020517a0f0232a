/**
 * The bound on the file descriptors a sandbox process may hold (`RLIMIT_NOFILE`), and the command line that
 * starts a sandbox under it.
 *
 * Why: descriptors cost the host things no other limit of the sandbox counts. A socket's kernel buffers
 * (up to `tcp_wmem[2]` sent but unread by the peer, `tcp_rmem[2]` received but unread by the tool) are
 * neither V8 heap nor resident memory of the process: a tool granted `net` held 646 MiB of host memory with
 * 160 loopback connections it never read, past its memory limit, and every TCP socket of the host shares the
 * kernel's `tcp_mem` (red team brk-sbx H1). And the open-file check (`open_files.ts`) lists and `stat`s the
 * descriptors on the runtime's thread: 19,000 opened by a module's load stalled the runtime 0.3–1 s per call
 * (H3). A sandbox inherited the runtime's limit (20,000 and more; hosts often allow a million).
 *
 * How: Deno has no flag for it and `Deno.Command` sets no limits, so the sandbox is started through
 * `/bin/sh`, which lowers both the soft and the hard limit (`ulimit -n`) and `exec`s Deno in the same
 * process: same pid, same command line for Deno, 3–6 ms more per process start, nothing per call. The hard limit
 * matters: Deno raises its soft limit to the hard one at start. A tool cannot raise it back (`setrlimit`
 * needs privileges it does not have, and it cannot run programs). Where there is no `/bin/sh` (a distroless
 * image) the sandbox starts without the limit, and the open-file check still refuses to list more
 * descriptors than the limit (it retires the process instead).
 *
 * The same line sets the core dump size to 0 (`RLIMIT_CORE`, soft and hard). A sandbox inherited the
 * runtime's, which containers commonly leave unlimited (dockerd and containerd run with `LimitCORE=infinity`):
 * a tool granted nothing called `Deno.kill(Deno.pid, "SIGQUIT")` (its own pid needs no permission) and the
 * kernel wrote its memory, 1.36 GB (234 MB on disk) with 200 MiB touched, as `core` in the tool's folder,
 * the sandbox's working folder: a file written with no `write` grant and past every bound, holding the
 * process's secrets (its env values, the call keys) for any tool that may read there (outside break attempt
 * brk35). A sandbox's core is of no use to anyone: Deno's own crashes are reported from its stderr.
 *
 * @module
 */

/**
 * Descriptors a sandbox process may hold by default. Deno and the sandbox use ~30 (stdio, the worker's
 * event loop, V8's and tokio's), so a tool has ~98 for its files, sockets (a kept-alive `fetch` connection
 * is one) and servers: enough for dozens of parallel requests, while the socket memory one process can hold
 * stays bounded (see docs/runtime-sandbox.md) and the open-file check lists at most this many (1–2 ms).
 */
export const DEFAULT_MAX_DESCRIPTORS = 128;

/**
 * Fewer than this and Deno itself may not start: a worker's event loop alone needs a few, and Deno panics
 * when it cannot create one.
 */
export const MIN_MAX_DESCRIPTORS = 64;

export const SHELL = "/bin/sh";
/** `$0` is the Deno executable, `$@` its arguments: nothing of the sandbox's command line is quoted here. */
// `unset PWD`: the shell exports the working folder it starts in, and the sandbox inherits nothing but its
// grants (test/runtime/sandbox_escape_test.ts, "reads only the env names it lists").
// `ulimit -c 0`: no core dump (see the module's doc); without -H or -S the shell sets both limits.
// `umask o-w`: nothing the sandbox creates is writable by every user of the host, whatever the runtime's umask
// (kernel_limits.ts refuses the bit to `chmod`; a tool cannot change its umask, which needs `sys`).
const LIMIT_SCRIPT = (max: number) =>
  `ulimit -n ${max} && ulimit -c 0 && umask o-w && unset PWD && exec "$0" "$@"`;

let shellPresent: boolean | undefined;

/**
 * The command that runs `executable` with `args` under a descriptor limit of `max`, or lower when the
 * runtime's own hard limit is lower (it cannot be raised); `executable` and `args` as they are when there is
 * no shell to set it.
 */
export function limitedCommand(
  executable: string,
  args: string[],
  max: number,
): { command: string; args: string[] } {
  if (!hasShell()) return { command: executable, args };
  const limit = Math.min(max, runtimeHardLimit() ?? max);
  return { command: SHELL, args: ["-c", LIMIT_SCRIPT(limit), executable, ...args] };
}

/** Whether `/bin/sh` is there to set a child's resource limits (`ulimit`) before it `exec`s the child. */
export function hasShell(): boolean {
  if (shellPresent === undefined) {
    if (Deno.build.os === "windows") return (shellPresent = false);
    try {
      shellPresent = Deno.statSync(SHELL).isFile;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      shellPresent = false;
    }
  }
  return shellPresent;
}

/**
 * The runtime's hard descriptor limit, which a child can lower but not raise; undefined when unlimited or
 * unknown (no `/proc`: `ulimit` then reports its own error, which fails the sandbox's start with its text).
 */
function runtimeHardLimit(): number | undefined {
  let limits: string;
  try {
    limits = Deno.readTextFileSync("/proc/self/limits");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const line = limits.split("\n").find((l) => l.startsWith("Max open files"));
  const hard = line?.split(/\s{2,}/)[2];
  return hard !== undefined && /^\d+$/.test(hard) ? Number(hard) : undefined;
}
