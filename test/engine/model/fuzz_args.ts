/**
 * The options of `deno task fuzz-engine`, read from the command line: `--help` is the usage, an unknown
 * option or a number that is not one is an error naming it (parseArgs threw "Unknown option" for `--help`,
 * with a stack trace, and `--cases abc` ran no case and said all of them passed).
 *
 * @module
 */
import { parseArgs } from "node:util";

export const USAGE = `Usage: deno task fuzz-engine [options]

Generates workflow cases from a seed, runs each on the real engine and compares it with the reference
interpreter; the first failing case is shrunk and printed. Exit code: 0 every case passed, 1 a case failed,
2 a bad option.

Options:
  --cases N         how many cases (default 50)
  --seed S          the first case's seed (default: from the clock)
  --features SPEC   default, all, or a comma list of changes to the default such as race,fail_fast,-cancel
  --batch B         cases per stack of nats-server, runtime and engine (default 25)
  --concurrency K   cases of a batch in flight at once (default: all of the batch)
  --crashes         SIGKILL the engine (sometimes nats-server too) at random moments
  --engines E       engine processes sharing each stack's nats-server (default 1, at most 4); with
                    --crashes each is killed and started again on its own clock
  --freezes         with --crashes: some kills are a SIGSTOP of 0.5-20 s and a SIGCONT instead (an
                    engine that keeps its connection but does nothing, then goes on as a stale holder)
  --keep-going      run every batch and list every failing seed (default: stop after the failing batch)
  --no-shrink       print the first failing case as it is, not shrunk
  -h, --help        this text`;

export interface FuzzArgs {
  cases: number;
  seed: number;
  features: string;
  batch: number;
  /** Undefined: the whole batch at once. */
  concurrency?: number;
  crashes: boolean;
  /** Engine processes sharing each stack's nats-server (one without --crashes runs in the harness's process). */
  engines: number;
  freezes: boolean;
  keepGoing: boolean;
  noShrink: boolean;
}

/** A usage error: the message names the option. */
export class FuzzArgsError extends Error {
  override name = "FuzzArgsError";
}

/** The parsed options, or "help" for `--help`; throws FuzzArgsError for anything it cannot take. */
export function parseFuzzArgs(argv: string[]): FuzzArgs | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        help: { type: "boolean", short: "h", default: false },
        cases: { type: "string", default: "50" },
        seed: { type: "string", default: String(Date.now() % 1_000_000) },
        features: { type: "string", default: "default" },
        batch: { type: "string", default: "25" },
        concurrency: { type: "string" },
        crashes: { type: "boolean", default: false },
        engines: { type: "string", default: "1" },
        freezes: { type: "boolean", default: false },
        "keep-going": { type: "boolean", default: false },
        "no-shrink": { type: "boolean", default: false },
      },
    }));
  } catch (error) {
    throw new FuzzArgsError((error as Error).message, { cause: error });
  }
  if (values.help) return "help";
  if (values.freezes && !values.crashes) throw new FuzzArgsError("--freezes goes with --crashes");
  return {
    cases: count("--cases", values.cases!, 0),
    seed: count("--seed", values.seed!, 0),
    features: values.features!,
    batch: count("--batch", values.batch!, 1),
    concurrency: values.concurrency === undefined ? undefined : count("--concurrency", values.concurrency, 1),
    crashes: values.crashes!,
    engines: count("--engines", values.engines!, 1, MAX_ENGINES),
    freezes: values.freezes!,
    keepGoing: values["keep-going"]!,
    noShrink: values["no-shrink"]!,
  };
}

/** More engines than cores only measure the machine: each is a Deno process folding every event. */
const MAX_ENGINES = 4;

function count(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^[0-9]{1,15}$/.test(text) || Number(text) < min || Number(text) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new FuzzArgsError(`${flag} must be a whole number ${range}, got '${text}'`);
  }
  return Number(text);
}
