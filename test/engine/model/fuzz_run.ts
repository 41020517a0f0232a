/**
 * The run of `deno task fuzz-engine` (fuzz.ts) once its options were read: that file loads this one only
 * then, so that `--help` and a bad option answer without loading the engine and its harness.
 */
import { caseYaml, usableCase } from "./cases.ts";
import { checkBatch, type Checked } from "./check.ts";
import { CRASH_UNFIT, KNOWN_CRASH_DEFECTS, KNOWN_DEFECTS, parseFeatures } from "./features.ts";
import { shrink } from "./shrink.ts";
import type { FuzzArgs } from "./fuzz_args.ts";

/** Runs the cases `args` asks for and exits: 0 when every conclusive case equals the reference, else 1. */
export async function runFuzz(args: FuzzArgs): Promise<never> {
  const { cases: count, seed, batch: size, crashes, engines, freezes } = args;
  const concurrency = args.concurrency ?? size;
  const features = parseFeatures(args.features, crashes);
  const left = Object.entries({
    ...KNOWN_DEFECTS,
    ...(crashes ? { ...KNOWN_CRASH_DEFECTS, ...CRASH_UNFIT } : {}),
  }).filter(([f]) => !features.has(f as never));
  console.log(
    `fuzz-engine: ${count} cases from seed ${seed}${crashes ? " with crashes" : ""}${
      engines > 1 ? ` on ${engines} engines` : ""
    }${freezes ? " with freezes" : ""}, ` +
      `batches of ${size}, ${concurrency} at once`,
  );
  if (left.length) {
    console.log(`left out: ${left.map(([f, d]) => `${f} (${d.split(":")[0]})`).join(", ")}`);
  }
  const started = Date.now();
  const failed: Checked[] = [];
  const inconclusive: Checked[] = [];
  let ran = 0;
  let kills = 0;
  let natsKills = 0;
  let frozen = 0;
  for (let start = 0; start < count && (args.keepGoing || !failed.length); start += size) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + size); i++) {
      batch.push(await usableCase(seed + i, features, crashes));
    }
    const done = await checkBatch(batch, { crashes, engines, freezes, concurrency });
    kills += done.kills;
    natsKills += done.natsKills;
    frozen += done.freezes;
    for (const r of done.results) {
      ran++;
      if (r.lateMs !== undefined) {
        console.log(
          `  seed ${r.case.seed}: slow, ended ${
            (r.lateMs / 1000).toFixed(0)
          } s past the harness's first limit`,
        );
      }
      if (!r.diffs.length) continue;
      if (r.inconclusive) {
        console.log(`  seed ${r.case.seed}: inconclusive, ${r.inconclusive}`);
        inconclusive.push(r);
        continue;
      }
      console.log(`  seed ${r.case.seed}: ${r.diffs.join("; ")}`);
      // Every failing case's events, as it happens: a long run may be cut short before its summary.
      if (args.keepGoing) console.log(`    events:\n      ${(r.history ?? []).join("\n      ")}`);
      failed.push(r);
    }
    console.log(
      `${ran}/${count} cases, ${failed.length} failed, ${inconclusive.length} inconclusive, ` +
        `${kills} engine kills, ${natsKills} nats-server kills, ${freezes ? `${frozen} freezes, ` : ""}${
          Math.round((Date.now() - started) / 1000)
        } s`,
    );
  }
  if (inconclusive.length) {
    console.log(`inconclusive (run again): seeds ${inconclusive.map((r) => r.case.seed).join(", ")}`);
  }
  if (!failed.length) {
    console.log(`all ${ran - inconclusive.length} conclusive cases of ${ran} equal the reference`);
    Deno.exit(0);
  }
  console.log(
    `\n${failed.length} of ${ran} cases differ: seeds ${failed.map((r) => r.case.seed).join(", ")}`,
  );
  const first = failed[0];
  console.log(`\ncase of seed ${first.case.seed} differs:\n  ${first.diffs.join("\n  ")}`);
  console.log(`its events:\n  ${(first.history ?? []).join("\n  ")}`);
  const minimal = !args.noShrink
    ? await shrink(first, { crashes, engines, freezes, log: (s) => console.log(s) })
    : first;
  console.log(`\n# minimal failing case\n${caseYaml(minimal.case)}`);
  console.log(`# differences\n#   ${minimal.diffs.join("\n#   ")}`);
  Deno.exit(1);
}
