/**
 * Model-based tests with two engines: the crash seed set's kind of cases run on two engine processes sharing
 * one nats-server (leases, issue 12), each SIGKILLed at random moments and started again while the other
 * takes over its executions (sometimes both down, sometimes nats-server too): the results must equal the
 * reference interpreter's, whichever engine ran what.
 */
import { checkSeeds, SEEDS } from "./seed_set.ts";

Deno.test({
  name: "model: the same on two engines, each SIGKILLed at random moments",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => checkSeeds(SEEDS.twoEngines.from, SEEDS.twoEngines.count, true, 2),
});
