/**
 * `deno task fuzz-engine --cases N --seed S [--crashes] [--engines E] [--freezes] [--features SPEC] [--batch B]
 * [--concurrency K] [--keep-going] [--no-shrink]`: generates N cases from seed S, runs each on the real engine (with
 * `--crashes`, while the engine process is SIGKILLed at random moments, sometimes with nats-server) and
 * compares it with the reference interpreter. The first failing case is shrunk and printed as YAML with its
 * event history; the exit code is 1 when a case failed, 2 for a bad option (`--help` lists them).
 *
 * Cases run in batches of B (default 25), each on a stack of its own (nats-server, runtime, engine), K of
 * them in flight at once (default: all B of the batch). With `--keep-going` every batch runs and every
 * failing seed is listed; without it the run stops after the batch holding the first failure.
 *
 * SPEC: `default` (every feature without an open defect), `all`, or a comma list of changes to the default
 * such as `race,fail_fast,-cancel`.
 */
import { type FuzzArgs, FuzzArgsError, parseFuzzArgs, USAGE } from "./fuzz_args.ts";

if (import.meta.main) {
  const args = optionsOrExit(Deno.args);
  // Loaded once the options are read: the engine and its harness take a second or more to load.
  const { runFuzz } = await import("./fuzz_run.ts");
  await runFuzz(args);
}

/** The options; `--help` prints the usage and exits 0, a bad option says which and exits 2. */
function optionsOrExit(argv: string[]): FuzzArgs {
  let args;
  try {
    args = parseFuzzArgs(argv);
  } catch (error) {
    if (!(error instanceof FuzzArgsError)) throw error;
    console.error(`fuzz-engine: ${error.message}\nRun with --help for the options.`);
    Deno.exit(2);
  }
  if (args === "help") {
    console.log(USAGE);
    Deno.exit(0);
  }
  return args;
}
