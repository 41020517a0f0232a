/**
 * Diagnostics: what the config loader reports about a project, one per problem, with its place in the source.
 *
 * @module
 */

import { relative } from "node:path";

/** One problem found in a project's files. `line` and `col` are 1-based. */
export interface Diagnostic {
  severity: "error" | "warning";
  /** Absolute path of the file the problem is in. */
  file: string;
  line: number;
  col: number;
  /** Field path inside the file, e.g. `tasks[2].with.city`; `(root)` for the document as a whole. */
  path: string;
  message: string;
}

/** A step in a field path: a mapping key or a list index. */
export type PathSegment = string | number;

/** Path printed for problems that concern a whole document (syntax, size, aliases). */
export const ROOT_PATH = "(root)";

/**
 * Formats a diagnostic as `<file>:<line>:<col>: <field path>: <message>`; warnings carry a `warning: `
 * prefix before the message so that they stay recognisable without colour.
 *
 * @example
 * ```ts
 * import { formatDiagnostic } from "./diagnostics.ts";
 * formatDiagnostic(
 *   { severity: "error", file: "/p/w.yaml", line: 3, col: 5, path: "tasks[0].use", message: "unknown tool" },
 *   "/p",
 * ); // "w.yaml:3:5: tasks[0].use: unknown tool"
 * ```
 */
export function formatDiagnostic(d: Diagnostic, cwd?: string): string {
  const file = cwd === undefined ? d.file : relative(cwd, d.file) || d.file;
  const message = d.severity === "warning" ? `warning: ${d.message}` : d.message;
  return `${file}:${d.line}:${d.col}: ${d.path}: ${message}`;
}

/** Thrown by `loadProject` when a project has errors; carries every diagnostic of the run, warnings included. */
export class ConfigError extends Error {
  readonly diagnostics: Diagnostic[];

  constructor(diagnostics: Diagnostic[], cwd?: string) {
    const errors = diagnostics.filter((d) => d.severity === "error");
    const shown = errors.slice(0, 20).map((d) => formatDiagnostic(d, cwd));
    const more = errors.length > shown.length ? `\n… and ${errors.length - shown.length} more` : "";
    super(`Invalid project configuration (${errors.length} error(s)):\n${shown.join("\n")}${more}`);
    this.name = "ConfigError";
    this.diagnostics = diagnostics;
  }
}

/** Orders diagnostics by file, then position, then message, so that output is stable between runs. */
export function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort((a, b) =>
    a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.message.localeCompare(b.message)
  );
}
