/** Latency statistics shared by the benchmarks. */

/** The `p`-th percentile (0–100) of `samples` by nearest rank; sorts a copy. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) throw new RangeError("Cannot take a percentile of no samples");
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Milliseconds rounded for a table: three decimals below 10 ms, one above. */
export function roundMs(ms: number): number {
  return ms < 10 ? Math.round(ms * 1_000) / 1_000 : Math.round(ms * 10) / 10;
}

/** CPU seconds (user + system) of the process `pid`, from /proc; NaN once it has exited. */
export function processCpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return NaN;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
