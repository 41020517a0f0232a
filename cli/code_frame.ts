/**
 * A code frame under a YAML syntax error: the line before, the line at fault with a caret under the column,
 * and the line after, numbered as editors number them.
 *
 * @module
 */

import type { Diagnostic } from "../engine/domain/diagnostics.ts";

/** Only syntax errors get a frame: the others name a field path, which says more than the text around. */
export function needsFrame(d: Diagnostic): boolean {
  return d.message.startsWith("YAML syntax error");
}

/**
 * The frame's lines, or none when the file cannot be read (it was read a moment ago; a race is not worth
 * an error of its own).
 *
 * @example
 * ```ts ignore
 * codeFrame("w.yaml", 4, 7); // ["  3 |   - id: a", "> 4 |       use: x", "    |       ^", "  5 | ..."]
 * ```
 */
export function codeFrame(file: string, line: number, col: number): string[] {
  let lines: string[];
  try {
    lines = Deno.readTextFileSync(file).split("\n");
  } catch {
    return [];
  }
  const first = Math.max(1, line - 1);
  const last = Math.min(lines.length, line + 1);
  const width = String(last).length;
  const out: string[] = [];
  for (let n = first; n <= last; n++) {
    const text = (lines[n - 1] ?? "").replaceAll("\t", "→");
    if (n === last && n !== line && text.trim() === "") break;
    out.push(`${n === line ? ">" : " "} ${String(n).padStart(width)} | ${text}`);
    if (n === line) out.push(`  ${" ".repeat(width)} | ${" ".repeat(Math.max(0, col - 1))}^`);
  }
  return out;
}
