/**
 * Runs `deno info --json` on a tool's (or an MCP script's) module, bounded in memory and in time.
 *
 * Why: `deno info` reads every file the module names before the import policy can refuse one, and it reads
 * each to its end. A tool whose module said `import "/dev/zero"` made the runtime's check start a `deno info`
 * that grew by hundreds of MB a second with no end (the host's memory, every other process on it included),
 * once per call of the tool; `import "/dev/ptmx"` (a new pseudo-terminal, which anyone may open and whose
 * read waits for ever) left the check pending for good, and every call of the tool then waited out its bound
 * behind it (outside break attempt brk-sbx3 G1).
 *
 * How: the child's data segment is bounded (`RLIMIT_DATA`, set by `/bin/sh`'s `ulimit -d` before it `exec`s
 * Deno, as descriptor_limit.ts does for sandboxes; it counts the heap and private writable mappings, not the
 * address space V8 reserves), so a read without end fails the import or stops `deno info` once it reaches
 * the bound; and it is killed after {@linkcode graphReadTimeoutMs}. Where there is no `/bin/sh`, only the time
 * bound holds.
 *
 * @module
 */
import { denoExecutable } from "./deno_executable.ts";
import { hasShell, SHELL } from "./descriptor_limit.ts";

/**
 * The data segment `deno info` may use (KiB). The largest graph the policy accepts (8 MiB of code,
 * import_policy.ts) needed between 128 and 256 MiB here; four times that leaves room for JSON modules and
 * Deno's own growth.
 */
export const GRAPH_READ_DATA_KIB = 1024 * 1024;

/**
 * Lowers the data segment's soft and hard limit to the bound, unless the runtime's own hard limit is lower
 * already (it cannot be raised). `$0` is the Deno executable, `$@` its arguments: nothing is quoted here.
 */
const LIMIT_SCRIPT =
  `h=$(ulimit -H -d); if [ "$h" = unlimited ] || [ "$h" -gt ${GRAPH_READ_DATA_KIB} ]; then ` +
  `ulimit -d ${GRAPH_READ_DATA_KIB} || exit 125; fi; exec "$0" "$@"`;

/** How long `deno info` may run by default: ~15 ms on an idle machine, seconds under heavy load. */
export const DEFAULT_GRAPH_READ_TIMEOUT_MS = 60_000;

let timeoutMs = DEFAULT_GRAPH_READ_TIMEOUT_MS;

/** How long `deno info` may run before it is killed (tests shorten it). */
export function graphReadTimeoutMs(): number {
  return timeoutMs;
}

/** Sets how long `deno info` may run from now on (ms, at least 1). */
export function configureGraphReadTimeout(ms: number): void {
  if (!Number.isInteger(ms) || ms < 1) throw new RangeError(`Invalid graph read timeout ${ms}`);
  timeoutMs = ms;
}

/** `deno info` did not end within its time bound (it was killed). */
export class GraphReadTimeout extends Error {
  override readonly name = "GraphReadTimeout";
  constructor(readonly modulePath: string, readonly timeoutMs: number) {
    super(`reading the module graph of ${modulePath} took over ${timeoutMs} ms (a file that never ends?)`);
  }
}

/**
 * The output of `deno info --json` for `modulePath`, run in `cwd`.
 *
 * @throws {GraphReadTimeout} when it runs past {@linkcode graphReadTimeoutMs}.
 */
export async function readModuleGraph(modulePath: string, cwd: string): Promise<Deno.CommandOutput> {
  const args = ["info", "--json", "--no-config", "--no-lock", "--no-remote", "--no-npm", modulePath];
  const deno = denoExecutable();
  const child = new Deno.Command(hasShell() ? SHELL : deno, {
    args: hasShell() ? ["-c", LIMIT_SCRIPT, deno, ...args] : args,
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const bound = timeoutMs;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch (e) {
      // Deno's answer for a child that has ended meanwhile: nothing to kill, and its output stands.
      if (!(e instanceof TypeError)) throw e;
      timedOut = false;
    }
  }, bound);
  try {
    const output = await child.output();
    if (timedOut) throw new GraphReadTimeout(modulePath, bound);
    return output;
  } finally {
    clearTimeout(timer);
  }
}
