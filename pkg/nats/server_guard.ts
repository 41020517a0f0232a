/**
 * One managed nats-server per JetStream store, and none outliving the process that started it (outside
 * review B6: a `kill -9` of `compozy dev` left its server running, and the next `dev` started a second one
 * on the same store directory, which NATS does not support).
 *
 * - The starting process holds an exclusive lock on `<store>/owner.lock` while its server runs. The kernel
 *   drops it when the process dies however it dies, so a lock that cannot be taken means a live owner: the
 *   start is refused (NatsStoreInUseError) and nothing is stopped.
 * - `<store>/nats-server.pid` names the running server. A new owner that finds it still running stops it,
 *   but only after checking that its command line is a nats-server with `-sd <store>/jetstream`: a pid the
 *   system reused for another program is left alone.
 * - A watchdog (`sh`, whose stdin is a pipe only the owner holds) sends SIGTERM to the server when that pipe
 *   closes, i.e. when the owner is gone, after the same command-line check. It is killed once the server has
 *   exited, so it never signals a pid that was reused.
 *
 * @module
 */
import { basename, join } from "node:path";
import { NatsStoreInUseError } from "./errors.ts";
import { SYSTEM_PATH, systemProgram } from "./system_programs.ts";

const LOCK_FILE = "owner.lock";
const PID_FILE = "nats-server.pid";

/** The JetStream directory a managed server of `storeDir` is started with (`-sd`). */
export function jetStreamDir(storeDir: string): string {
  return join(storeDir, "jetstream");
}

/** The store taken for one server: recorded once it runs, released once it has exited. */
export interface StoreClaim {
  /** The pid of a server left running by a dead owner, which the claim stopped. */
  readonly stoppedOrphan?: number;
  /** Records the server's pid and starts the watchdog that stops it when this process is gone. */
  running(serverPid: number): Promise<void>;
  /** The server has exited: stops the watchdog, removes the pid file and drops the lock. */
  release(): Promise<void>;
}

/**
 * Takes `storeDir` for one server: refuses (NatsStoreInUseError) while another live process holds it, and
 * stops a server of ours left running by a dead one.
 */
export async function claimStore(storeDir: string): Promise<StoreClaim> {
  await Deno.mkdir(storeDir, { recursive: true });
  const lock = await Deno.open(join(storeDir, LOCK_FILE), { create: true, write: true });
  if (!await lock.tryLock(true)) {
    lock.close();
    const holder = await readPidFile(storeDir);
    throw new NatsStoreInUseError(storeDir, holder?.owner);
  }
  let stoppedOrphan: number | undefined;
  try {
    const recorded = await readPidFile(storeDir);
    if (recorded && await isServerOf(recorded.server, storeDir)) {
      await stopOrphan(recorded.server, storeDir);
      stoppedOrphan = recorded.server;
    }
  } catch (e) {
    lock.close();
    throw e;
  }
  let watchdog: Deno.ChildProcess | undefined;
  let released: Promise<void> | undefined;
  const release = async () => {
    if (watchdog) {
      try {
        watchdog.kill("SIGKILL");
      } catch {
        // Already gone (e.g. Ctrl-C reached our process group).
      }
      await watchdog.status;
    }
    await Deno.remove(join(storeDir, PID_FILE)).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }).finally(() => lock.close());
  };
  return {
    stoppedOrphan,
    async running(serverPid) {
      await Deno.writeTextFile(
        join(storeDir, PID_FILE),
        JSON.stringify({ server: serverPid, owner: Deno.pid }) + "\n",
      );
      watchdog = startWatchdog(serverPid, jetStreamDir(storeDir));
    },
    release() {
      released ??= release();
      return released;
    },
  };
}

interface PidFile {
  server: number;
  owner?: number;
}

async function readPidFile(storeDir: string): Promise<PidFile | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(storeDir, PID_FILE));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    const parsed = JSON.parse(text) as PidFile;
    return Number.isInteger(parsed.server) && parsed.server > 1 ? parsed : undefined;
  } catch {
    // Half written by a process killed while writing it: there is no pid to trust.
    return undefined;
  }
}

/** True when `pid` runs a nats-server started on `storeDir`'s JetStream directory. */
export async function isServerOf(pid: number, storeDir: string): Promise<boolean> {
  const args = await commandLine(pid);
  if (!args || !basename(args[0] ?? "").startsWith("nats-server")) return false;
  const at = args.indexOf("-sd");
  return at >= 0 && args[at + 1] === jetStreamDir(storeDir);
}

/** The arguments `pid` runs with, or undefined when it does not run (or has exited: a zombie has none). */
async function commandLine(pid: number): Promise<string[] | undefined> {
  if (Deno.build.os === "linux") {
    const raw = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    // Each argument ends with a NUL.
    return raw ? raw.split("\0").slice(0, -1) : undefined;
  }
  // Elsewhere `ps` prints the arguments joined by spaces: a store path with spaces does not match, and is
  // then left alone, the safe side.
  const out = await new Deno.Command(systemProgram("ps"), {
    args: ["-ww", "-o", "args=", "-p", String(pid)],
    env: { PATH: SYSTEM_PATH },
    stderr: "null",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return out.success && text ? text.split(/\s+/) : undefined;
}

/** SIGTERM (JetStream flushes its store), then SIGKILL after 10 s if the same server still runs. */
async function stopOrphan(pid: number, storeDir: string): Promise<void> {
  signal(pid, "SIGTERM");
  const deadline = Date.now() + 10_000;
  while (await isServerOf(pid, storeDir)) {
    if (Date.now() > deadline) {
      signal(pid, "SIGKILL");
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // SIGKILL is not refused: wait until the process has gone for good.
  while (await isServerOf(pid, storeDir)) await new Promise((resolve) => setTimeout(resolve, 50));
}

function signal(pid: number, name: Deno.Signal): void {
  try {
    Deno.kill(pid, name);
  } catch (e) {
    // It exited between the check and the signal.
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * `sh` waiting for the end of its stdin, which only this process writes to (never): once it ends, this
 * process is gone, and the server, if its command line still names the store, gets SIGTERM. Not on Windows.
 */
function startWatchdog(serverPid: number, jetStream: string): Deno.ChildProcess | undefined {
  if (Deno.build.os === "windows") return undefined;
  const script = [
    "while read -r _; do :; done",
    'if [ -r "/proc/$1/cmdline" ]; then tr "\\000" "\\n" < "/proc/$1/cmdline" | grep -qxF -- "$2" || exit 0; fi',
    'kill -TERM "$1" 2>/dev/null',
  ].join("\n");
  // By absolute path, and with a PATH of the system's folders for its `tr` and `grep` (system_programs.ts).
  const child = new Deno.Command(systemProgram("sh"), {
    args: ["-c", script, "compozy-nats-watchdog", String(serverPid), jetStream],
    env: { PATH: SYSTEM_PATH },
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Not waited for by this process's event loop: it lives as long as the server.
  child.unref();
  return child;
}
