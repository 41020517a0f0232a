/**
 * Kills processes whose resident memory passes a ceiling: tool sandboxes (tool_runner.ts) and `script` MCP
 * servers (mcp/mcp_transport.ts).
 *
 * The V8 heap limit (`--max-old-space-size`) does not cover ArrayBuffers, which live outside the heap: in
 * Deno 2.9.6 a tool can allocate and fill a 2 GiB `Uint8Array` under a 256 MB heap limit. Address-space
 * rlimits do not work either (V8 reserves gigabytes of address space at start-up). So the runtime samples
 * each sandbox's resident set from /proc and kills the process that passes the ceiling; the call fails
 * `tool_memory_exceeded`. A sample every 50 ms lets a fast allocation overshoot by what it can touch in
 * that time. Where /proc does not exist (macOS), only the heap limit applies.
 *
 * It also kills a process that keeps using CPU between calls. An ended call can leave an asynchronous chain
 * that no call scope refuses (a `MessageChannel` ping-pong, `crypto.subtle.digest(...).then(again)`), each
 * turn busy: the second red team's probes kept an idle pooled process burning 10–35% of a CPU for ever. An
 * idle worker uses next to nothing, so more than {@linkcode IDLE_CPU_MS} of CPU over a window of
 * {@linkcode IDLE_WINDOW_MS} with no call started is left-over work: the process is retired (`stale`).
 *
 * And it kills a process whose call wrote more than the process's `maxCallWriteBytes` to files (issue 10,
 * sbx34): `RLIMIT_FSIZE` bounds each file (kernel_limits.ts), not how many a call writes. It reads
 * `write_bytes` of /proc/<pid>/io, which the kernel counts when the page cache takes the bytes (probed: it
 * matched the file's size at every 50 ms sample of a 400 MiB write), from the last sample before the call
 * (or the process's start): bytes written between two samples with no call started meanwhile are left-over
 * work of a finished call, and retire the process (`stale`); a call is charged with up to one interval of
 * the previous call's bytes when calls follow one another with no sample between them; and a call that wrote past
 * the bound and returned before a sample saw it running has its process killed at the next sample (its
 * result stands). A sample every 50 ms lets a call overshoot by what it writes in that time, which into the
 * page cache can be hundreds of MiB (400 MiB landed between two samples in one probe).
 *
 * And it kills a process that keeps more than {@linkcode DEFAULT_MAX_RUNNABLE_THREADS} threads runnable at once,
 * past {@linkcode THREAD_EXCESS_PER_WINDOW} threads over the bound summed over the counts of the last
 * {@linkcode THREAD_WINDOW_MS} (outside break attempt brk40). A tool's JavaScript runs on one thread, but
 * Deno runs `crypto.subtle`, `node:crypto`'s asynchronous functions (`pbkdf2`, `scrypt`, key generation)
 * and file work on a pool of up to 32 blocking threads per runtime, with no permission: a tool
 * granted nothing started 64 `crypto.subtle.deriveBits` and its process ran 32 threads at once until its time
 * limit. The scheduler shares a CPU by thread, so the runtime's thread (and NATS, and every other sandbox) got
 * a 33rd of the share a plain `for(;;)` leaves it: the runtime's event loop stalled 1.1–3.5 s at a time
 * instead of 0.08–0.12 s, and other tools' warm calls took as long. V8's own helper threads (garbage
 * collection, compilation; named `V8 …`, as many as the host has CPUs at most) are not counted. The threads
 * are counted every {@linkcode THREAD_LOOK_EVERY_MS}. Threads over the bound counted between calls, or during an
 * earlier call, are not the running call's doing: the process is retired (`stale`) and that call runs again
 * elsewhere. Linux only, like the rest of the watch.
 *
 * @module
 */

const SAMPLE_EVERY_MS = 50;
/**
 * The default bound on the bytes of files one call may write (COMPOZY_SANDBOX_MAX_CALL_WRITE_BYTES): four files
 * at the default per-file bound.
 */
export const DEFAULT_MAX_CALL_WRITE_BYTES = 1024 * 1024 * 1024;
const IDLE_WINDOW_MS = 2_000;
const IDLE_CPU_MS = 150;
/** How often the runnable threads of a process not between calls are counted. */
export const THREAD_LOOK_EVERY_MS = 200;
/** The window over which a process's runnable threads past its bound are summed. */
export const THREAD_WINDOW_MS = 2_000;
/**
 * Runnable threads past the bound, summed over the counts of one window, a process may have: an average of
 * two over the bound (a continuous 32 passes it at the first count; bursts of 32 may fill 7% of the time).
 */
export const THREAD_EXCESS_PER_WINDOW = 2 * (THREAD_WINDOW_MS / THREAD_LOOK_EVERY_MS);
/**
 * Runnable threads a sandbox may keep at once, V8's helpers aside: its worker, its host thread and two of Deno's
 * blocking threads (a file read and a digest in flight together are normal; 32 at once is not).
 */
export const DEFAULT_MAX_RUNNABLE_THREADS = 4;
// Linux's USER_HZ: /proc/<pid>/stat counts CPU time in hundredths of a second.
const MS_PER_TICK = 10;

/**
 * A process the watch samples. Its pid is read only until `exited` settles; the kill goes through the
 * process's own handle, never by pid: pids are reused (pid_max can be 32768, and a test run starts thousands
 * of processes), so a pid read after its process was reaped may be another process's.
 */
export interface WatchedProcess {
  readonly pid: number;
  /** Settles once the process has exited; the watch stops sampling it there. */
  readonly exited: Promise<unknown>;
  /** Kills the process; it must do nothing once the process has exited. */
  kill(reason: "memory" | "stale" | "writes" | "threads", message: string): void;
  /** Whether it is alive and waiting for its next call; a process without calls is not checked for idle CPU. */
  readonly betweenCalls?: boolean;
  /** How many calls it has started. */
  readonly calls?: number;
  /** Bytes one call may write to files; absent: not counted (a process that may not write). */
  readonly maxCallWriteBytes?: number;
  /** Threads (V8's helpers aside) it may keep runnable at once; absent: not counted. */
  readonly maxRunnableThreads?: number;
}

/** What a kill for memory says: the resident memory seen and the ceiling, in MiB. */
export type MemoryMessage = (residentBytes: number, limitBytes: number) => string;

const passedCeiling: MemoryMessage = (rss, limit) =>
  `resident memory ${mib(rss)} MiB passed the ceiling of ${mib(limit)} MiB`;

export class MemoryWatch {
  readonly #limitBytes: number;
  readonly #memoryMessage: MemoryMessage;
  readonly #processes = new Set<WatchedProcess>();
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Per process between calls: its CPU time and call count at the start of the current window. */
  readonly #idleCpu = new Map<WatchedProcess, { ticks: number; calls: number; at: number }>();
  /**
   * Per process that may write, in bytes written since it started: where its running (or last) call counts
   * from, and the last sample with the calls it had started then.
   */
  readonly #written = new Map<
    WatchedProcess,
    { base: number; last: number; lastCalls: number; lastIdle: boolean; idleWrites: number }
  >();
  /** Per process counted for threads: when they were last counted, and since when too many were runnable. */
  readonly #threads = new Map<
    WatchedProcess,
    {
      lookedAt: number;
      ticks: number | undefined;
      looks: { at: number; over: number; owner: number | undefined }[];
    }
  >();

  constructor(limitBytes: number, memoryMessage: MemoryMessage = passedCeiling) {
    this.#limitBytes = limitBytes;
    this.#memoryMessage = memoryMessage;
  }

  watch(process: WatchedProcess): void {
    this.#processes.add(process);
    process.exited.then(() => this.#forget(process));
    if (this.#timer === undefined) {
      const timer = setInterval(() => this.#sample(), SAMPLE_EVERY_MS);
      // Sampling alone must not keep the runtime alive.
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#processes.clear();
    this.#idleCpu.clear();
    this.#written.clear();
    this.#threads.clear();
  }

  #forget(process: WatchedProcess): void {
    this.#processes.delete(process);
    this.#idleCpu.delete(process);
    this.#written.delete(process);
    this.#threads.delete(process);
    if (this.#processes.size === 0) this.stop();
  }

  /**
   * Reads /proc synchronously: those reads never wait for a disk, and an asynchronous read waits for a thread
   * of the runtime's blocking pool, which a sandbox keeping 32 threads busy starves (the samples of a whole
   * watch then came seconds apart, brk40).
   */
  #sample(): void {
    for (const p of [...this.#processes]) {
      const rss = residentBytes(p.pid);
      if (rss !== undefined && rss > this.#limitBytes) {
        p.kill("memory", this.#memoryMessage(rss, this.#limitBytes));
      }
      this.#checkIdleCpu(p);
      if (p.maxCallWriteBytes !== undefined) this.#checkWrites(p, p.maxCallWriteBytes);
      if (p.maxRunnableThreads !== undefined) this.#checkThreads(p, p.maxRunnableThreads);
    }
  }

  #checkWrites(p: WatchedProcess, limit: number): void {
    const calls = p.calls ?? 0;
    const idle = p.betweenCalls || calls === 0;
    const written = writtenBytes(p.pid);
    if (written === undefined) return;
    const seen = this.#written.get(p) ?? { base: 0, last: 0, lastCalls: 0, lastIdle: false, idleWrites: 0 };
    // A call started since the last sample: it counts from that sample, the last one before it (so it is
    // charged with what the call before wrote after that sample, at most one interval's worth). Queued calls
    // follow one another with no sample between calls, and must not add up.
    if (!idle && seen.lastCalls !== calls) seen.base = seen.last;
    // Checked between calls too: a call that wrote past the bound and returned before a sample saw it running
    // must not leave its process in the pool, to do it again at every call (its own result is already given).
    if (written - seen.base > limit) {
      const wrote = `wrote ${written - seen.base} bytes of files in one call, past the bound of ${limit} ` +
        "bytes (COMPOZY_SANDBOX_MAX_CALL_WRITE_BYTES)";
      // A call started while /proc was read did not write those bytes: it runs again in another process.
      if (p.calls !== calls) return p.kill("stale", `an earlier call ${wrote}`);
      return p.kill("writes", `it ${wrote}`);
    }
    // Writes in two intervals between samples since the last call ended, with no call started since, are that
    // call's left-over work (a loop parked on `Atomics.waitAsync`, which no call scope cancels, wrote on for
    // good at under the bound per sample; brk34): the process is retired, as left-over CPU retires it
    // (#checkIdleCpu). One interval is not enough: Deno writes its own caches once, just after a call. The
    // intervals need not follow one another: a writer waiting longer than a sample between writes is one too.
    const quiet = idle && seen.lastIdle && seen.lastCalls === calls;
    if (!quiet) seen.idleWrites = 0;
    else if (written > seen.last) seen.idleWrites++;
    if (seen.idleWrites >= 2 && p.calls === calls && p.betweenCalls) {
      return p.kill(
        "stale",
        `it wrote ${written - seen.base} bytes of files with no call running (work left by its last call)`,
      );
    }
    // No call ran when /proc was read: the next call counts from here.
    if (idle) seen.base = written;
    seen.last = written;
    seen.lastCalls = calls;
    seen.lastIdle = idle;
    this.#written.set(p, seen);
  }

  #checkThreads(p: WatchedProcess, bound: number): void {
    const now = performance.now();
    const seen = this.#threads.get(p) ?? { lookedAt: -Infinity, ticks: undefined, looks: [] };
    if (now - seen.lookedAt < THREAD_LOOK_EVERY_MS) return;
    // Listing the threads costs a read per thread: only a process that used CPU since the last look (more
    // than a tick) can have threads runnable for long; an idle one costs one read of its stat per look.
    const ticks = cpuTicks(p.pid);
    if (ticks === undefined) return void this.#threads.delete(p);
    const busy = seen.ticks !== undefined && ticks - seen.ticks > 1;
    const runnable = busy ? runnableThreads(p.pid) : 0;
    if (runnable === undefined) return void this.#threads.delete(p);
    // The looks of the last window, each with its threads over the bound and whose they were: counted between
    // calls too, so that threads an ended call left busy are not blamed on the next call.
    const looks = seen.looks.filter((look) => now - look.at < THREAD_WINDOW_MS);
    looks.push({ at: now, over: Math.max(0, runnable - bound), owner: p.betweenCalls ? undefined : p.calls });
    this.#threads.set(p, { lookedAt: now, ticks, looks });
    // A sum over the window, not a run of looks over the bound: bursts under a window each, with a look at
    // or under the bound between them, kept 32 threads runnable two thirds of the time (brk40).
    const excess = looks.reduce((sum, look) => sum + look.over, 0);
    if (excess <= THREAD_EXCESS_PER_WINDOW) return;
    const most = bound + Math.max(...looks.map((look) => look.over));
    const kept =
      `kept up to ${most} threads runnable at once (${excess} over the bound of ${bound} in all, ` +
      `counted every ${THREAD_LOOK_EVERY_MS} ms over ${THREAD_WINDOW_MS} ms)`;
    // An ended call's work (a call running now runs again in another process), as #checkIdleCpu says it.
    if (p.betweenCalls || looks.some((look) => look.over > 0 && look.owner !== p.calls)) {
      return p.kill("stale", `it ${kept} with work an ended call left behind`);
    }
    return p.kill(
      "threads",
      `it ${kept}: work it started in parallel on Deno's blocking threads (crypto.subtle, node:crypto ` +
        "or file operations); run fewer at once",
    );
  }

  #checkIdleCpu(p: WatchedProcess): void {
    const seen = this.#idleCpu.get(p);
    const now = performance.now();
    if (!p.betweenCalls || p.calls === undefined || (seen && seen.calls !== p.calls)) {
      return void this.#idleCpu.delete(p);
    }
    if (seen && now - seen.at < IDLE_WINDOW_MS) return;
    const ticks = cpuTicks(p.pid);
    if (ticks === undefined) return;
    // A call may have started while /proc was read: its CPU is not left-over work.
    if (
      seen && p.betweenCalls && seen.calls === p.calls && (ticks - seen.ticks) * MS_PER_TICK > IDLE_CPU_MS
    ) {
      return p.kill(
        "stale",
        `it used ${(ticks - seen.ticks) * MS_PER_TICK} ms of CPU in ${
          Math.round(now - seen.at)
        } ms with no call ` +
          `running: work an ended call left behind`,
      );
    }
    this.#idleCpu.set(p, { ticks, calls: p.calls, at: now });
  }
}

/** Bytes of files `pid` wrote since it started (`write_bytes`), or undefined where /proc does not say. */
function writtenBytes(pid: number): number | undefined {
  try {
    const io = Deno.readTextFileSync(`/proc/${pid}/io`);
    const bytes = /^write_bytes: (\d+)$/m.exec(io)?.[1];
    return bytes === undefined ? undefined : Number(bytes);
  } catch {
    return undefined;
  }
}

/** User plus system CPU time of a process in clock ticks, or undefined where /proc is not available. */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces), from field 3: utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/**
 * How many threads of `pid` are runnable (state `R`: running or waiting for a CPU), V8's helper threads aside,
 * or undefined where /proc does not say.
 */
function runnableThreads(pid: number): number | undefined {
  try {
    let runnable = 0;
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/stat`);
        const close = stat.lastIndexOf(")");
        // The command name (up to 15 bytes) is between the parentheses; the state follows them.
        if (stat[close + 2] === "R" && !stat.slice(stat.indexOf("(") + 1, close).startsWith("V8 ")) {
          runnable++;
        }
      } catch {
        // The thread ended while the list was read.
      }
    }
    return runnable;
  } catch {
    return undefined;
  }
}

/** Resident memory of a process in bytes, or undefined where /proc is not available. */
function residentBytes(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** `bytes` in whole MiB, as the watch's messages say them. */
export function mib(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}
