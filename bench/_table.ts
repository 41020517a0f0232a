/** Plain-text tables for benchmark results: what `deno task bench` prints. */

/** One result line of a benchmark: flat, printable values only. */
export type BenchRow = Record<string, string | number>;

/**
 * Formats rows as an aligned table under a title. Columns are the keys in the order they first appear;
 * numbers are right-aligned (integers with thousands separators), text left-aligned, a missing cell is blank.
 *
 * @example
 * ```ts
 * console.log(formatTable("NATS", [{ benchmark: "core", "msgs/s": 412000, "p50 ms": 0.21 }]));
 * // NATS
 * // benchmark   msgs/s  p50 ms
 * // ---------  -------  ------
 * // core       412,000    0.21
 * ```
 */
export function formatTable(title: string, rows: readonly BenchRow[]): string {
  if (rows.length === 0) return `${title}\n(no results)\n`;
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cells = rows.map((row) => columns.map((c) => formatCell(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const numeric = columns.map((c) => rows.every((row) => row[c] === undefined || typeof row[c] === "number"));
  const line = (values: string[]) =>
    values.map((v, i) => numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i])).join("  ").trimEnd();
  return [
    title,
    line(columns),
    line(widths.map((w) => "-".repeat(w))),
    ...cells.map(line),
  ].join("\n") + "\n";
}

function formatCell(value: string | number | undefined): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return Number.isInteger(value) ? value.toLocaleString("en-US") : String(value);
}
