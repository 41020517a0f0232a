/**
 * Model-based tests with crashes: the cases of model_test.ts's kind run while the engine process is SIGKILLed
 * at random moments (and sometimes nats-server): the results must equal the reference interpreter's, and no
 * tool call may start for a task whose outcome was recorded. Cases whose outcome a crash changes by design
 * (a workflow time-out, a race decided while other branches ran) are left out (features.ts, cases.ts).
 */
import { checkSeeds, SEEDS } from "./seed_set.ts";

Deno.test({
  name: "model: the same with the engine process SIGKILLed at random moments",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => checkSeeds(SEEDS.crashes.from, SEEDS.crashes.count, true),
});
