/**
 * `deno task fuzz-engine --cases N --seed S [--crashes] [--features SPEC] [--concurrency K] [--no-shrink]`:
 * generates N cases from seed S, runs each on the real engine (with `--crashes`, while the engine process is
 * SIGKILLed at random moments) and compares it with the reference interpreter. The first failing case is
 * shrunk and printed as YAML; the exit code is 1 when a case failed.
 *
 * SPEC: `default` (every feature without an open defect), `all`, or a comma list of changes to the default
 * such as `race,fail_fast,-cancel`.
 */
import { parseArgs } from "node:util";
import { caseYaml, usableCase } from "./cases.ts";
import { checkBatch, type Checked } from "./check.ts";
import { KNOWN_CRASH_DEFECTS, KNOWN_DEFECTS, parseFeatures } from "./features.ts";
import { shrink } from "./shrink.ts";

const BATCH = 25;

if (import.meta.main) {
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      cases: { type: "string", default: "50" },
      seed: { type: "string", default: String(Date.now() % 1_000_000) },
      features: { type: "string", default: "default" },
      concurrency: { type: "string", default: "3" },
      crashes: { type: "boolean", default: false },
      "no-shrink": { type: "boolean", default: false },
    },
  });
  const count = Number(args.cases);
  const seed = Number(args.seed);
  const crashes = args.crashes!;
  const features = parseFeatures(args.features!, crashes);
  const left = Object.entries({ ...KNOWN_DEFECTS, ...(crashes ? KNOWN_CRASH_DEFECTS : {}) })
    .filter(([f]) => !features.has(f as never));
  console.log(`fuzz-engine: ${count} cases from seed ${seed}${crashes ? " with crashes" : ""}`);
  if (left.length) {
    console.log(`left out (open defects): ${left.map(([f, d]) => `${f} (${d.split(":")[0]})`).join(", ")}`);
  }
  const started = Date.now();
  let failed: Checked | undefined;
  let ran = 0;
  let kills = 0;
  for (let start = 0; start < count && !failed; start += BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + BATCH); i++) {
      batch.push(await usableCase(seed + i, features));
    }
    const done = await checkBatch(batch, { crashes, concurrency: Number(args.concurrency) });
    kills += done.kills;
    for (const r of done.results) {
      ran++;
      if (r.diffs.length) console.log(`  seed ${r.case.seed}: ${r.diffs.join("; ")}`);
      if (r.diffs.length && !failed) failed = r;
    }
    console.log(
      `${ran}/${count} cases, ${kills} engine kills, ${Math.round((Date.now() - started) / 1000)} s`,
    );
  }
  if (!failed) {
    console.log(`all ${ran} cases equal the reference`);
    Deno.exit(0);
  }
  console.log(`\ncase of seed ${failed.case.seed} differs:\n  ${failed.diffs.join("\n  ")}`);
  const minimal = !args["no-shrink"] ? await shrink(failed, { crashes, log: (s) => console.log(s) }) : failed;
  console.log(`\n# minimal failing case\n${caseYaml(minimal.case)}`);
  console.log(`# differences\n#   ${minimal.diffs.join("\n#   ")}`);
  Deno.exit(1);
}
