/**
 * Model-based tests of the engine: generated workflows (every task type, nested, with scripted tool outcomes,
 * signals, pause, resume and cancel) run on the real engine, runtime, sandbox and nats-server, and must end
 * as the reference interpreter says: status, output, per-task outcomes and tool calls. Then cases run while
 * the engine process is SIGKILLed at random moments (and sometimes nats-server): the results must not change
 * and no tool call may start for a task whose outcome was recorded.
 *
 * Features with an open defect of issue 9 are left out (features.ts, KNOWN_DEFECTS), and so are seeds of
 * the fixed set whose rare shape shows one (KNOWN_DEFECT_SEEDS); `deno task fuzz-engine` runs more seeds
 * and shrinks a failing case.
 */
import assert from "node:assert/strict";
import { caseYaml, usableCase } from "./cases.ts";
import { checkBatch } from "./check.ts";
import { defaultFeatures, KNOWN_DEFECT_SEEDS } from "./features.ts";

const SEEDS = { plain: { from: 1, count: 40 }, crashes: { from: 500, count: 10 } };

async function checkSeeds(from: number, count: number, crashes: boolean): Promise<void> {
  const features = defaultFeatures(crashes);
  const batch = [];
  for (let seed = from; seed < from + count; seed++) {
    if (seed in KNOWN_DEFECT_SEEDS) console.log(`seed ${seed} left out: ${KNOWN_DEFECT_SEEDS[seed]}`);
    else batch.push(await usableCase(seed, features, crashes));
  }
  const { results, kills } = await checkBatch(batch, { crashes });
  // A case whose tool got no sandbox in time (a loaded machine) says nothing about the engine: run it again.
  const again = results.filter((r) => r.inconclusive);
  if (again.length) {
    const rerun = await checkBatch(again.map((r) => ({ case: r.case, expected: r.expected })), { crashes });
    results.splice(0, results.length, ...results.filter((r) => !r.inconclusive), ...rerun.results);
  }
  const failed = results.filter((r) => r.diffs.length);
  const report = failed.map((r) => `${caseYaml(r.case)}\n# differences:\n#   ${r.diffs.join("\n#   ")}`);
  assert.equal(
    failed.length,
    0,
    `${failed.length} of ${batch.length} cases differ from the reference:\n${report.join("\n\n")}`,
  );
  if (crashes) assert.ok(kills > 0, "the engine was never killed");
}

Deno.test({
  name: "model: generated workflows end on the engine as in the reference interpreter",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => checkSeeds(SEEDS.plain.from, SEEDS.plain.count, false),
});

Deno.test({
  name: "model: the same with the engine process SIGKILLed at random moments",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => checkSeeds(SEEDS.crashes.from, SEEDS.crashes.count, true),
});
