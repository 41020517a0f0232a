/**
 * Printing configuration diagnostics the way `compozy validate` does (one per line, warnings marked), for
 * commands that load a project on the way (dev, start, build, reloads).
 *
 * @module
 */
import { type Diagnostic, formatDiagnostic } from "../engine/domain/diagnostics.ts";
import type { Paint } from "./terminal.ts";

export function formatDiagnostics(diagnostics: readonly Diagnostic[], cwd: string, paint: Paint): string[] {
  return diagnostics.map((d) => {
    const line = formatDiagnostic(d, cwd);
    return d.severity === "error" ? paint.red(line) : paint.yellow(line);
  });
}
