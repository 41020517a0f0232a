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
