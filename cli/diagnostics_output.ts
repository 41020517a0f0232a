/**
 * Printing configuration diagnostics the way `compozy validate` does (one per line, warnings marked), for
 * commands that load a project on the way (dev, start, build, reloads).
 *
 * @module
 */
import { relative } from "node:path";
import { type Diagnostic, formatDiagnostic } from "../engine/domain/diagnostics.ts";
import { cleanForTerminal } from "../pkg/logger/formatters.ts";
import { codeFrame, needsFrame } from "./code_frame.ts";
import type { Paint } from "./terminal.ts";

/** Lines for `diagnostics`, with file names relative to `cwd` when the file is under it, else absolute. */
export function formatDiagnostics(diagnostics: readonly Diagnostic[], cwd: string, paint: Paint): string[] {
  return diagnostics.flatMap((d) => {
    const under = !relative(cwd, d.file).startsWith("..");
    const line = diagnosticLine(d, under ? cwd : undefined);
    const frame = needsFrame(d)
      ? codeFrame(d.file, d.line, d.col).map((l) => paint.dim(cleanForTerminal(l)))
      : [];
    return [d.severity === "error" ? paint.red(line) : paint.yellow(line), ...frame];
  });
}

/**
 * One diagnostic as `formatDiagnostic` writes it, each of its lines through the logger's terminal sanitizer:
 * a message may quote a tool module's own text (an import attribute, a bare specifier in `deno check`'s
 * diagnostic), and a tool's code is an attacker's (red team 8, S1: ESC, BEL and CR in a string literal set
 * the window title and overwrote the error line from `compozy validate`).
 */
export function diagnosticLine(d: Diagnostic, cwd?: string): string {
  return formatDiagnostic(d, cwd).split("\n").map(cleanForTerminal).join("\n");
}
