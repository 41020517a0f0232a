/**
 * The per-step segments of a W1 run from step trace files (README.md): for each trace file given, the p50 in ms of
 * every segment between two consecutive labels of one step, in the order of the step's path, and their sum.
 * The first sixth of each file (the warm-up) is left out.
 *
 * Run: `deno run -A bench/step_trace/segments.ts before.txt after.txt`
 *
 * @module
 */

/** The labels of one step, in the order they happen (step_trace.patch). */
export const STEP_PATH = [
  "E.dispatch",
  "E.tool.build",
  "R.recv",
  "R.acquire",
  "R.acquired",
  "R.fit",
  "S.sent",
  "S.frame3",
  "R.called",
  "R.ran",
  "R.reply",
  "E.tool.reply",
  "E.succ.begin",
  "E.succ.acked",
  "E.dispatch",
];

/** Gaps between consecutive labels (all processes' lines merged by time), by "from -> to". */
export function segmentsOf(text: string): Map<string, number[]> {
  const rows = text.split("\n").filter((l) => l.trim()).map((l) => {
    const [t, , label] = l.split(" ");
    return { t: Number(t), label };
  }).sort((a, b) => a.t - b.t);
  const kept = rows.slice(Math.floor(rows.length / 6));
  const gaps = new Map<string, number[]>();
  for (let i = 1; i < kept.length; i++) {
    const key = `${kept[i - 1].label} -> ${kept[i].label}`;
    if (!gaps.has(key)) gaps.set(key, []);
    gaps.get(key)!.push(kept[i].t - kept[i - 1].t);
  }
  return gaps;
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

if (import.meta.main) {
  const files = Deno.args;
  const all = files.map((f) => segmentsOf(Deno.readTextFileSync(f)));
  const sums = files.map(() => 0);
  for (let i = 1; i < STEP_PATH.length; i++) {
    const key = `${STEP_PATH[i - 1]} -> ${STEP_PATH[i]}`;
    const cells = all.map((gaps, f) => {
      const p50 = median(gaps.get(key) ?? []);
      sums[f] += p50;
      return p50.toFixed(3).padStart(7);
    });
    console.log(`${key.padEnd(30)} ${cells.join(" ")}`);
  }
  console.log(`${"sum of the p50s".padEnd(30)} ${sums.map((s) => s.toFixed(3).padStart(7)).join(" ")}`);
}
