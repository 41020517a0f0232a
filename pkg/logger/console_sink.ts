/** The local sink: formatted lines to stderr (or to a given writer), written synchronously. */
import type { LogRecord, Sink } from "@logtape/logtape";

/** Where formatted lines go. */
export type LineWriter = (line: string) => void;

/**
 * Writes each line to stderr before the log call returns. Synchronous on purpose: lines keep their order
 * across processes sharing a terminal, and the last lines before a crash are not lost in a buffer.
 */
export function writeToStderr(line: string): void {
  const bytes = new TextEncoder().encode(line);
  let written = 0;
  while (written < bytes.byteLength) written += Deno.stderr.writeSync(bytes.subarray(written));
}

/** A sink that formats each record and hands the text to `write`. */
export function createConsoleSink(format: (record: LogRecord) => string, write: LineWriter): Sink {
  return (record) => {
    try {
      write(format(record));
    } catch {
      // stderr is closed (the parent went away): there is nowhere left to report to.
    }
  };
}
