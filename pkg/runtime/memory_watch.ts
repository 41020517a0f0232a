/**
 * Kills sandbox processes whose resident memory passes a ceiling.
 *
 * The V8 heap limit (`--max-old-space-size`) does not cover ArrayBuffers, which live outside the heap: in
 * Deno 2.9.6 a tool can allocate and fill a 2 GiB `Uint8Array` under a 256 MB heap limit. Address-space
 * rlimits do not work either (V8 reserves gigabytes of address space at start-up). So the runtime samples
 * each sandbox's resident set from /proc and kills the process that passes the ceiling; the call fails
 * `tool_memory_exceeded`. A sample every 50 ms lets a fast allocation overshoot by what it can touch in
 * that time. Where /proc does not exist (macOS), only the heap limit applies.
 *
 * @module
 */
import type { SandboxProcess } from "./sandbox_process.ts";

const SAMPLE_EVERY_MS = 50;

export class MemoryWatch {
  readonly #limitBytes: number;
  readonly #processes = new Set<SandboxProcess>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #sampling = false;

  constructor(limitBytes: number) {
    this.#limitBytes = limitBytes;
  }

  watch(process: SandboxProcess): void {
    this.#processes.add(process);
    process.exited.then(() => this.#forget(process));
    if (this.#timer === undefined) {
      const timer = setInterval(() => void this.#sample(), SAMPLE_EVERY_MS);
      // Sampling alone must not keep the runtime alive.
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#processes.clear();
  }

  #forget(process: SandboxProcess): void {
    this.#processes.delete(process);
    if (this.#processes.size === 0) this.stop();
  }

  async #sample(): Promise<void> {
    if (this.#sampling) return; // a slow /proc read must not pile up samples
    this.#sampling = true;
    try {
      await Promise.all([...this.#processes].map(async (p) => {
        const rss = await residentBytes(p.pid);
        if (rss !== undefined && rss > this.#limitBytes) {
          p.kill(
            "memory",
            `resident memory ${mib(rss)} MiB passed the ceiling of ${mib(this.#limitBytes)} MiB`,
          );
        }
      }));
    } finally {
      this.#sampling = false;
    }
  }
}

/** Resident memory of a process in bytes, or undefined where /proc is not available. */
export async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

function mib(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}
