/**
 * The fixed seed sets of `make test` (model_test.ts, model_crash_test.ts, model_two_engines_test.ts) and how
 * one is checked.
 */
import assert from "node:assert/strict";
import { caseYaml, usableCase } from "./cases.ts";
import { checkBatch, type Checked } from "./check.ts";
import { defaultFeatures, type Feature, KNOWN_DEFECT_SEEDS, LATER_SHAPES } from "./features.ts";

export const SEEDS = {
  plain: { from: 1, count: 40 },
  crashes: { from: 500, count: 10 },
  twoEngines: { from: 600, count: 10 },
};

/** Runs of an inconclusive case after the first, one case at a time (the batch's own load is gone then). */
const RERUNS = 2;

/**
 * Checks the seeds `from`…`from + count - 1` on the real engine. A case that says nothing about the engine
 * (a tool that got no sandbox in time on a loaded machine, an engine that did not answer in time) runs
 * again, alone; one still inconclusive then is reported and left out, as long as most cases were judged: a
 * run where fewer than MIN_CONCLUSIVE of them were is a failure (the machine was too loaded to say anything).
 */
export async function checkSeeds(
  from: number,
  count: number,
  crashes: boolean,
  engines = 1,
): Promise<void> {
  // The sets' seeds generate what they always did: the later shapes are left out (features.ts LATER_SHAPES).
  const features = new Set<Feature>([...defaultFeatures(crashes)].filter((f) => !LATER_SHAPES.includes(f)));
  const batch = [];
  for (let seed = from; seed < from + count; seed++) {
    if (seed in KNOWN_DEFECT_SEEDS) console.log(`seed ${seed} left out: ${KNOWN_DEFECT_SEEDS[seed]}`);
    else batch.push(await usableCase(seed, features, crashes));
  }
  const first = await checkBatch(batch, { crashes, engines });
  let kills = first.kills;
  let results: Checked[] = first.results;
  for (let run = 0; run < RERUNS && results.some((r) => r.inconclusive); run++) {
    const again = results.filter((r) => r.inconclusive);
    const rerun = await checkBatch(again.map((r) => ({ case: r.case, expected: r.expected })), {
      crashes,
      engines,
      concurrency: 1,
    });
    kills += rerun.kills;
    results = [...results.filter((r) => !r.inconclusive), ...rerun.results];
  }
  const inconclusive = results.filter((r) => r.inconclusive);
  for (const r of inconclusive) {
    console.log(`seed ${r.case.seed} inconclusive after ${RERUNS} reruns: ${r.inconclusive}`);
  }
  const failed = results.filter((r) => r.diffs.length && !r.inconclusive);
  const report = failed.map((r) => `${caseYaml(r.case)}\n# differences:\n#   ${r.diffs.join("\n#   ")}`);
  assert.equal(
    failed.length,
    0,
    `${failed.length} of ${batch.length} cases differ from the reference:\n${report.join("\n\n")}`,
  );
  const judged = batch.length - inconclusive.length;
  assert.ok(
    judged >= Math.ceil(batch.length * MIN_CONCLUSIVE),
    `only ${judged} of ${batch.length} cases were conclusive: ${
      inconclusive.map((r) => r.inconclusive).join("; ")
    }`,
  );
  if (crashes) assert.ok(kills > 0, "the engine was never killed");
}

/** The share of a seed set that must be judged (equal or differing) for the run to say something. */
const MIN_CONCLUSIVE = 0.8;
