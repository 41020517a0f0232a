/**
 * Reads what a sandbox process writes to stderr: keeps the last bytes for failure details, and tells
 * whether the process reported running out of memory anywhere in it.
 *
 * Why the whole stream: V8 prints its out-of-memory report first and a C stack trace after it, and a process
 * can print other things before dying; a marker that scrolled out of the kept tail turned a heap overflow
 * into `tool_crashed` (a CI flake under load). So every chunk is scanned as it arrives, with an overlap that
 * catches a marker split across two chunks, and only the tail is kept.
 *
 * @module
 */

/**
 * The lines V8 and Deno print when a process dies for want of memory (Deno 2.9.6 / V8 14):
 * - `Fatal JavaScript out of memory: Reached heap limit` or `...: Ineffective mark-compacts near heap limit`
 *   (V8's heap limit, `--max-old-space-size`);
 * - `Fatal process out of memory: ...` / `Fatal process OOM in ...` (V8 could not get memory from the OS);
 * - `... Allocation failed - JavaScript heap out of memory` (the older V8 and Node wording);
 * - `Fatal JavaScript invalid size error` (a V8 collection grown past its maximum size);
 * - `memory allocation of N bytes failed` (Rust's allocator, in Deno's own code).
 */
const OUT_OF_MEMORY_MARKERS: readonly RegExp[] = [
  /Fatal JavaScript out of memory/i,
  /Fatal process out of memory/i,
  /Fatal process OOM/i,
  /JavaScript heap out of memory/i,
  /Reached heap limit/i,
  /Ineffective mark-compacts near heap limit/i,
  /Allocation failed/i,
  /Fatal JavaScript invalid size error/i,
  /memory allocation of \d+ bytes failed/i,
];

/** Longest text a marker can span: a chunk boundary is scanned with this much of the previous chunk. */
const MARKER_OVERLAP_CHARS = 96;

/** True if `text` holds one of V8's or Deno's out-of-memory reports. Pure: the classifier the tests pin. */
export function reportsOutOfMemory(text: string): boolean {
  return OUT_OF_MEMORY_MARKERS.some((marker) => marker.test(text));
}

/** Scans a stderr stream chunk by chunk; `tail` is the last `tailBytes`, `outOfMemory` covers all of it. */
export class StderrScan {
  readonly #tailBytes: number;
  readonly #decoder = new TextDecoder();
  #kept: Uint8Array = new Uint8Array(0);
  #carry = "";
  #outOfMemory = false;

  constructor(tailBytes: number) {
    this.#tailBytes = tailBytes;
  }

  push(chunk: Uint8Array): void {
    this.#keep(chunk);
    if (this.#outOfMemory) return;
    const window = this.#carry + this.#decoder.decode(chunk, { stream: true });
    this.#outOfMemory = reportsOutOfMemory(window);
    this.#carry = window.slice(-MARKER_OVERLAP_CHARS);
  }

  get outOfMemory(): boolean {
    return this.#outOfMemory;
  }

  /** The kept tail as text, without terminal colours. */
  get tail(): string {
    // deno-lint-ignore no-control-regex
    return new TextDecoder().decode(this.#kept).replace(/\u001b\[[0-9;]*m/g, "");
  }

  #keep(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.#kept.length + chunk.length);
    joined.set(this.#kept, 0);
    joined.set(chunk, this.#kept.length);
    this.#kept = joined.length > this.#tailBytes ? joined.slice(joined.length - this.#tailBytes) : joined;
  }
}

/** Reads `stream` to its end through a {@linkcode StderrScan}, calling `onChunk` with each chunk's size. */
export async function scanStderr(
  stream: ReadableStream<Uint8Array>,
  tailBytes: number,
  onChunk: (bytes: number) => void = () => {},
): Promise<StderrScan> {
  const scan = new StderrScan(tailBytes);
  for await (const chunk of stream) {
    scan.push(chunk);
    onChunk(chunk.length);
  }
  return scan;
}
