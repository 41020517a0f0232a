/**
 * Model-based tests of the engine: generated workflows (every task type, nested, with scripted tool outcomes,
 * signals, pause, resume and cancel) run on the real engine, runtime, sandbox and nats-server, and must end
 * as the reference interpreter says: status, output, per-task outcomes and tool calls. The same with the
 * engine SIGKILLed is model_crash_test.ts (a file of its own, so that `deno test --parallel` runs the two
 * at once).
 *
 * Features with an open defect of issue 9 are left out (features.ts, KNOWN_DEFECTS), and so are seeds of
 * the fixed set whose rare shape shows one (KNOWN_DEFECT_SEEDS); `deno task fuzz-engine` runs more seeds
 * and shrinks a failing case.
 */
import { checkSeeds, SEEDS } from "./seed_set.ts";

Deno.test({
  name: "model: generated workflows end on the engine as in the reference interpreter",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => checkSeeds(SEEDS.plain.from, SEEDS.plain.count, false),
});
