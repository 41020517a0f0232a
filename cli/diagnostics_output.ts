/**
 * Printing configuration diagnostics the way `compozy validate` does (one per line, warnings marked), for
 * commands that load a project on the way (dev, start, build, reloads).
 *
 * @module
 */
import { relative } from "node:path";
import { type Diagnostic, formatDiagnostic } from "../engine/domain/diagnostics.ts";
import { codeFrame, needsFrame } from "./code_frame.ts";
import type { Paint } from "./terminal.ts";

/** Lines for `diagnostics`, with file names relative to `cwd` when the file is under it, else absolute. */
export function formatDiagnostics(diagnostics: readonly Diagnostic[], cwd: string, paint: Paint): string[] {
  return diagnostics.flatMap((d) => {
    const under = !relative(cwd, d.file).startsWith("..");
    const line = formatDiagnostic(d, under ? cwd : undefined);
    const frame = needsFrame(d) ? codeFrame(d.file, d.line, d.col).map(paint.dim) : [];
    return [d.severity === "error" ? paint.red(line) : paint.yellow(line), ...frame];
  });
}
