/**
 * The `compozy` command line (API.md "CLI"). Every command takes `--cwd` and `--help`; flags fall back to
 * their environment equivalents; errors print one clear line (plus details) on stderr; exit codes are 0 ok,
 * 1 user error, 2 internal error.
 *
 * @module
 */
import { EnvSettingError } from "../pkg/utils/env_number.ts";
import { assertToken } from "../pkg/nats/subjects.ts";
import { resolve } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ConfigError } from "../engine/domain/diagnostics.ts";
import { WORKFLOW_STATUSES } from "../engine/state/execution_state.ts";
import {
  NatsServerNotFoundError,
  NatsServerStartError,
  NatsStoreInUseError,
  NatsUnavailableError,
} from "../pkg/nats/errors.ts";
import { CliError, EXIT_INTERNAL, EXIT_OK, EXIT_USER_ERROR } from "./cli_error.ts";
import { formatDiagnostics } from "./diagnostics_output.ts";
import { RUNTIME_COMMAND } from "./runtime_command.ts";
import { useCachedSandboxModules } from "./sandbox_cache.ts";
import { isCompiledBinary } from "../pkg/runtime/deno_executable.ts";
import { decimalInteger, ENV, envValue, parseBodyLimit, parsePort, serverUrl } from "./settings.ts";
import { type Role, ROLES } from "./roles.ts";
import { cliCommand } from "./invocation.ts";
import { paintFor } from "./terminal.ts";
// Not through the logger's mod.ts, which loads its NATS sink (NATS client, Protobuf) before a command runs.
import { cleanForTerminal } from "../pkg/logger/formatters.ts";
import { versionInfo } from "./version.ts";
import { configureProtectedFiles } from "../pkg/runtime/grant_paths.ts";
import { parseDuration } from "../engine/domain/duration.ts";
import { dropRelativeEntries, relativeEntriesWarning } from "../pkg/utils/search_path.ts";

/**
 * `load`'s function, loaded when it is called: a command's modules (engine, server, NATS client) are run
 * only for that command, and `--help` or a refused flag runs none of them (0.80 s of CPU per start before,
 * 0.65 s after; `deno run` still reads the whole graph, static string imports included, so that `deno
 * compile` takes them in). The arguments are worked out before the load, so a bad one is said without it.
 */
function loadedOnCall<A extends unknown[], R>(load: () => Promise<(...args: A) => Promise<R>>) {
  return async (...args: A): Promise<R> => (await load())(...args);
}

const runBuild = loadedOnCall(async () => (await import("./commands/build.ts")).runBuild);
const runDeploy = loadedOnCall(async () => (await import("./commands/deploy.ts")).runDeploy);
const runDev = loadedOnCall(async () => (await import("./commands/dev.ts")).runDev);
const runExecutionsCancel = loadedOnCall(async () =>
  (await import("./commands/executions.ts")).runExecutionsCancel
);
const runExecutionsControl = loadedOnCall(async () =>
  (await import("./commands/executions.ts")).runExecutionsControl
);
const runExecutionsList = loadedOnCall(async () =>
  (await import("./commands/executions.ts")).runExecutionsList
);
const runExecutionsLogs = loadedOnCall(async () =>
  (await import("./commands/executions.ts")).runExecutionsLogs
);
const runExecutionsRerun = loadedOnCall(async () =>
  (await import("./commands/executions.ts")).runExecutionsRerun
);
const runExecutionsShow = loadedOnCall(async () =>
  (await import("./commands/executions.ts")).runExecutionsShow
);
const runExecutionsSignal = loadedOnCall(async () =>
  (await import("./commands/executions.ts")).runExecutionsSignal
);
const runInit = loadedOnCall(async () => (await import("./commands/init.ts")).runInit);
const runRun = loadedOnCall(async () => (await import("./commands/run.ts")).runRun);
const runSchemagen = loadedOnCall(async () => (await import("./commands/schemagen.ts")).runSchemagen);
const runStart = loadedOnCall(async () => (await import("./commands/start.ts")).runStart);
const runValidate = loadedOnCall(async () => (await import("./commands/validate.ts")).runValidate);

/** Runs the CLI with `args` (without the program name) and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  // Before any look-up or child process: relative PATH entries name whatever folder a command runs in.
  warnOfRelativePathEntries(dropRelativeEntries());
  if (args[0] === RUNTIME_COMMAND) {
    // Hidden: how the compiled binary starts its runtime (cli/runtime_process.ts). Loaded only here, so the
    // other commands do not load the provider clients.
    const { runtimeMain } = await import("../pkg/runtime/main.ts");
    // Its sandboxes cannot run the modules inside the binary: they run the bundles written to the cache.
    if (isCompiledBinary()) await useCachedSandboxModules();
    return await runtimeMain(args.slice(1));
  }
  // The NATS credentials file this process and its runtime connect with is never a tool's to read: `validate`
  // and a deployment's check refuse a grant covering it, as the runtime does (breaker2 D5).
  configureProtectedFiles([Deno.env.get("NATS_CREDS")]);
  let exitCode = EXIT_OK;
  const program = buildProgram((code) => exitCode = code);
  try {
    await program.parseAsync(args, { from: "user" });
    return exitCode;
  } catch (e) {
    return report(e);
  }
}

/** Says once, on stderr, which relative PATH entries this process (and every child it starts) ignores. */
function warnOfRelativePathEntries(dropped: readonly string[]): void {
  if (dropped.length > 0) {
    console.error(paintFor(Deno.stderr).yellow(`warning: ${relativeEntriesWarning(dropped)}`));
  }
}

/**
 * Every command path (`executions rerun`) with its long flags, for checks that docs name real commands.
 *
 * @example
 * ```ts
 * import { commandTable } from "./main.ts";
 * commandTable().get("executions rerun"); // ["--input", "--cwd", "--server", …]
 * ```
 */
export function commandTable(): Map<string, string[]> {
  const table = new Map<string, string[]>();
  const visit = (command: Command, prefix: string) => {
    for (const sub of command.commands) {
      const path = prefix ? `${prefix} ${sub.name()}` : sub.name();
      table.set(path, [...sub.options.map((o) => o.long ?? ""), "--help"].filter(Boolean));
      visit(sub, path);
    }
  };
  visit(buildProgram(() => {}), "");
  return table;
}

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command("compozy")
    .description("Compozy: AI-agent workflows declared in YAML, run durably on NATS")
    .version(versionInfo().version, "-V, --version")
    .showHelpAfterError("(add --help for usage)")
    .exitOverride();
  const cwdOption = () => new Option("--cwd <dir>", "project directory").default(".");
  const serverOption = () =>
    new Option(
      "--server <url>",
      `server URL (env ${ENV.server}; default http://127.0.0.1:$${ENV.port} or 3001)`,
    );
  const apiKeyOption = () =>
    new Option("--api-key <key>", `API key (env ${ENV.apiKey})`).argParser((key) => {
      const problem = apiKeyProblem(key);
      if (problem) throw new InvalidArgumentError(problem);
      return key;
    });
  const jsonOption = () => new Option("--json", "print JSON instead of text");
  const bodyLimitOption = () =>
    new Option("--body-limit <bytes>", `API request body limit (env ${ENV.bodyLimit}; default 1 MiB)`);
  const run = (fn: () => Promise<number>) => async () => setExit(await fn());

  program.command("init").description("scaffold a new project (compozy.yaml, a workflow, a tool, an agent)")
    .argument("[dir]", "where to create it (default: --cwd)", nonEmpty)
    .addOption(cwdOption())
    .action((dir: string | undefined, o: { cwd: string }) => run(() => runInit({ cwd: o.cwd, dir }))());

  program.command("dev").description("run NATS, engine, runtime and API in one process, with a live log")
    .addOption(cwdOption())
    .addOption(
      new Option("--port <port>", `API port (env ${ENV.port})`).default(envValue(ENV.port) ?? "3001"),
    )
    .option(
      "--watch",
      "reload when the project's YAML, .env or code change (running calls finish on the old code)",
      false,
    )
    .addOption(bodyLimitOption())
    .addOption(new Option("--nats-url <url>", `use this NATS instead of a managed one (env ${ENV.natsUrl})`))
    .addOption(apiKeyOption())
    .option("--run <workflow>", "once ready, start this workflow and show how it ends")
    .option("--input <json>", "the input of --run, as JSON (default {})")
    .action((o) =>
      run(() =>
        runDev({
          run: o.run,
          input: o.input,
          cwd: o.cwd,
          port: parsePort(o.port),
          watch: o.watch,
          natsUrl: o.natsUrl ?? envValue(ENV.natsUrl),
          apiKey: apiKeySetting(o.apiKey),
          bodyLimitBytes: parseBodyLimit(o.bodyLimit ?? envValue(ENV.bodyLimit)),
        })
      )()
    );

  program.command("start").description("run production processes (one role or all)")
    .addOption(cwdOption())
    .addOption(new Option("--role <role>", "which part to run").choices([...ROLES]).default("all"))
    .option("--bundle <file>", "run a bundle made by `compozy build`")
    .addOption(
      new Option("--port <port>", `API port (env ${ENV.port})`).default(envValue(ENV.port) ?? "3001"),
    )
    .addOption(
      new Option("--host <host>", `API address (env ${ENV.host})`).default(envValue(ENV.host) ?? "0.0.0.0"),
    )
    .addOption(
      new Option("--nats-url <url>", `NATS to use (env ${ENV.natsUrl}); --role all starts one without it`),
    )
    .addOption(apiKeyOption())
    .addOption(new Option("--instance-id <id>", `stable id of this process (env ${ENV.instanceId})`))
    .addOption(bodyLimitOption())
    .action((o) =>
      run(() =>
        runStart({
          cwd: o.cwd,
          role: o.role as Role,
          bundle: o.bundle,
          port: parsePort(o.port),
          host: o.host,
          natsUrl: o.natsUrl ?? envValue(ENV.natsUrl),
          apiKey: apiKeySetting(o.apiKey),
          instanceId: instanceIdSetting(o.instanceId, envValue(ENV.instanceId)),
          bodyLimitBytes: parseBodyLimit(o.bodyLimit ?? envValue(ENV.bodyLimit)),
        })
      )()
    );

  program.command("validate").description("load and check the project; every problem is listed")
    .addOption(cwdOption())
    .action((o) => run(() => runValidate({ cwd: resolve(o.cwd) }))());

  program.command("run").description("start an execution on a running server")
    .argument("<workflow>", "workflow id", nonEmpty)
    .option("--input <json>", "the input, as JSON", undefined)
    .option("--input-file <file>", "read the input from a JSON file (relative to --cwd)")
    .option("--wait", "follow the execution and print its progress and output", false)
    .addOption(
      new Option("--timeout <duration>", "how long --wait follows it").default("10m").argParser(durationArg),
    )
    .addOption(
      new Option("--idempotency-key <key>", "start at most once for this key (24 h)").argParser(nonEmpty),
    )
    .addOption(cwdOption())
    .addOption(serverOption())
    .addOption(apiKeyOption())
    .addOption(jsonOption())
    .action((workflow: string, o) =>
      run(() =>
        runRun({
          workflow,
          input: o.input,
          inputFile: o.inputFile,
          cwd: o.cwd,
          wait: o.wait,
          timeoutMs: typeof o.timeout === "number" ? o.timeout : parseDuration(o.timeout),
          idempotencyKey: o.idempotencyKey,
          json: !!o.json,
          ...remote(o),
        })
      )()
    );

  const executions = program.command("executions").description("inspect and control executions");
  executions.command("list").description("list executions, newest first")
    .addOption(new Option("--workflow <id>", "only this workflow").argParser(nonEmpty))
    .addOption(
      new Option("--status <status>", `only this status (${WORKFLOW_STATUSES.join(", ")}; any case)`)
        .argParser(statusArg),
    )
    .addOption(new Option("--limit <n>", "page size").argParser(positiveInt))
    .addOption(
      new Option("--cursor <cursor>", "the next page, as printed after a full page").argParser(nonEmpty),
    )
    .addOption(cwdOption()).addOption(serverOption()).addOption(apiKeyOption()).addOption(jsonOption())
    .action((o) =>
      run(() =>
        runExecutionsList({
          workflow: o.workflow,
          status: o.status,
          limit: o.limit,
          cursor: o.cursor,
          json: !!o.json,
          ...remote(o),
        })
      )()
    );
  executions.command("show").description("an execution's state and tasks")
    .argument("<exec_id>", "execution id", nonEmpty)
    .addOption(cwdOption()).addOption(serverOption()).addOption(apiKeyOption()).addOption(jsonOption())
    .action((execId: string, o) => run(() => runExecutionsShow(execId, { json: !!o.json, ...remote(o) }))());
  executions.command("cancel").description("cancel an execution")
    .argument("<exec_id>", "execution id", nonEmpty)
    .option("--reason <text>", "recorded in the execution's history")
    .addOption(cwdOption()).addOption(serverOption()).addOption(apiKeyOption()).addOption(jsonOption())
    .action((execId: string, o) =>
      run(() => runExecutionsCancel(execId, { reason: o.reason, json: !!o.json, ...remote(o) }))()
    );
  executions.command("signal").description(
    "send a signal to one execution (--exec) or every waiting one (--all)",
  )
    .argument("<signal_id>", "signal id", nonEmpty)
    .addOption(new Option("--exec <exec_id>", "the execution to signal").argParser(nonEmpty))
    .option("--all", "every execution waiting for this signal", false)
    .option("--payload <json>", "the signal payload, as JSON")
    .addOption(cwdOption()).addOption(serverOption()).addOption(apiKeyOption()).addOption(jsonOption())
    .action((signalId: string, o) =>
      run(() =>
        runExecutionsSignal(signalId, {
          exec: o.exec,
          all: o.all,
          payload: o.payload,
          json: !!o.json,
          ...remote(o),
        })
      )()
    );

  executions.command("logs").description("log records of an execution (its tools' console output too)")
    .argument("<exec_id>", "execution id", nonEmpty)
    .option("-f, --follow", "keep printing new records until the execution ends", false)
    .addOption(cwdOption()).addOption(serverOption()).addOption(apiKeyOption()).addOption(jsonOption())
    .action((execId: string, o) =>
      run(() => runExecutionsLogs(execId, { follow: !!o.follow, json: !!o.json, ...remote(o) }))()
    );
  for (const action of ["pause", "resume"] as const) {
    executions.command(action).description(
      action === "pause"
        ? "pause an execution: running tasks finish, no new task starts"
        : "resume a paused execution",
    )
      .argument("<exec_id>", "execution id", nonEmpty)
      .addOption(cwdOption()).addOption(serverOption()).addOption(apiKeyOption()).addOption(jsonOption())
      .action((execId: string, o) =>
        run(() => runExecutionsControl(action, execId, { json: !!o.json, ...remote(o) }))()
      );
  }
  executions.command("rerun").description(
    "start the same workflow again, with the same input or --input; prints the new exec id",
  )
    .argument("<exec_id>", "execution id", nonEmpty)
    .option("--input <json>", "a new input, as JSON (default: the first execution's input)")
    .addOption(cwdOption()).addOption(serverOption()).addOption(apiKeyOption()).addOption(jsonOption())
    .action((execId: string, o) =>
      run(() => runExecutionsRerun(execId, { input: o.input, json: !!o.json, ...remote(o) }))()
    );
  program.command("build").description("validate and bundle the project into one file")
    .addOption(cwdOption())
    .addOption(new Option("--out <dir>", "output directory").default("dist").argParser(nonEmpty))
    .action((o) => run(() => runBuild({ cwd: o.cwd, out: o.out }))());

  program.command("deploy").description("send a bundle to a running server, which loads it without downtime")
    .addOption(cwdOption())
    .addOption(serverOption())
    .addOption(apiKeyOption())
    .option("--bundle <file>", "the bundle (default: the newest in dist/)")
    .action((o) => run(() => runDeploy({ cwd: o.cwd, bundle: o.bundle, ...remote(o) }))());

  program.command("schemagen").description("write the JSON Schemas of the YAML files to schemas/")
    .addOption(cwdOption())
    .addOption(new Option("--out <dir>", "output directory (default: schemas)").argParser(nonEmpty))
    .action((o) => run(() => runSchemagen({ cwd: resolve(o.cwd), out: o.out }))());

  addExamples(program);
  program.addHelpText(
    "after",
    [
      "",
      "Getting started:",
      `  $ ${cliCommand()} init my-app`,
      `  $ ${cliCommand()} dev --cwd my-app --watch`,
    ].join("\n"),
  );
  return program;
}

/** `compozy <command> --help` ends with examples; the command path is the key. */
const EXAMPLES: Record<string, string[]> = {
  "init": ["compozy init my-app", "compozy dev --cwd my-app --watch"],
  "dev": [
    'compozy dev --cwd examples/hello --run hello --input \'{"name": "Ada"}\'',
    "compozy dev --cwd my-app --watch --port 3002",
  ],
  "start": ["compozy start --role all --port 8080", "NATS_URL=nats://nats:4222 compozy start --role engine"],
  "validate": ["compozy validate --cwd my-app"],
  "run": [
    'compozy run hello --input \'{"name": "Ada"}\' --wait',
    "compozy run weather --input-file input.json --wait --timeout 2m",
  ],
  "executions list": ["compozy executions list --status waiting", "compozy executions list --workflow hello"],
  "executions show": ["compozy executions show <exec_id>", "compozy executions show <exec_id> --json"],
  "executions logs": ["compozy executions logs <exec_id>", "compozy executions logs <exec_id> --follow"],
  "executions cancel": ["compozy executions cancel <exec_id> --reason 'wrong input'"],
  "executions pause": ["compozy executions pause <exec_id>"],
  "executions resume": ["compozy executions resume <exec_id>"],
  "executions rerun": [
    "compozy executions rerun <exec_id>",
    'compozy executions rerun <exec_id> --input \'{"name": "Grace"}\'',
  ],
  "executions signal": [
    "compozy executions signal approve --exec <exec_id> --payload '{\"ok\": true}'",
    "compozy executions signal approve --all",
  ],
  "build": ["compozy build --out dist"],
  "deploy": ["compozy deploy --server http://prod:3001 --bundle dist/my-app.bundle.json"],
  "schemagen": ["compozy schemagen --out schemas"],
};

function addExamples(program: Command): void {
  const visit = (command: Command, prefix: string) => {
    for (const sub of command.commands) {
      const path = prefix ? `${prefix} ${sub.name()}` : sub.name();
      const examples = EXAMPLES[path];
      // From a checkout the command is `deno task compozy`, not `compozy`.
      const lines = examples?.map((e) => `  $ ${e.replace(/^compozy /, `${cliCommand()} `)}`);
      if (lines) sub.addHelpText("after", `\nExamples:\n${lines.join("\n")}`);
      visit(sub, path);
    }
  };
  visit(program, "");
}

/** A status in any case (`waiting`, `Waiting`), checked against the statuses the API knows. */
function statusArg(value: string): string {
  const status = value.toUpperCase();
  if (!(WORKFLOW_STATUSES as readonly string[]).includes(status)) {
    throw new InvalidArgumentError(`expected one of ${WORKFLOW_STATUSES.join(", ")} (any case)`);
  }
  return status;
}

function remote(o: { server?: string; apiKey?: string }): { server: string; apiKey?: string } {
  return { server: serverUrl(o.server), apiKey: apiKeySetting(o.apiKey) };
}

function durationArg(value: string): number {
  try {
    return parseDuration(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/**
 * Why a key cannot be the API key: empty (an unset variable in quotes), `--api-key ""` served the API with no
 * auth; with white space, no `Authorization: Bearer <key>` header can carry it, and every request was a 401.
 */
function apiKeyProblem(key: string): string | undefined {
  if (key === "") return "it is empty (leave --api-key out for no auth)";
  if (/\s/.test(key)) return "it has white space, which an 'Authorization: Bearer <key>' header cannot carry";
  return undefined;
}

/** `--api-key` (checked as it is parsed), else COMPOZY_API_KEY (unset or empty: no key). */
function apiKeySetting(flag: string | undefined): string | undefined {
  if (flag !== undefined) return flag;
  const env = envValue(ENV.apiKey);
  const problem = env === undefined ? undefined : apiKeyProblem(env);
  if (problem) throw new CliError(`${ENV.apiKey}: ${problem}`);
  return env;
}

/**
 * `--instance-id` (else COMPOZY_INSTANCE_ID), checked before anything starts: it names NATS subjects, and a
 * bad one was an internal error with a stack trace ("Cannot configure logging: Invalid instance id…").
 */
function instanceIdSetting(flag: string | undefined, env: string | undefined): string | undefined {
  const [name, value] = flag !== undefined ? ["--instance-id", flag] : [ENV.instanceId, env];
  if (value === undefined) return undefined;
  try {
    assertToken(name, value);
  } catch (e) {
    throw new CliError((e as Error).message, [], EXIT_USER_ERROR, { cause: e });
  }
  return value;
}

/**
 * An id, key, cursor or folder given as empty text (an unset shell variable in quotes): refused, since read as
 * "not given" it listed every workflow's executions for `--workflow ""`, started without `--idempotency-key`,
 * and wrote `build --out ""` into the project folder itself.
 */
function nonEmpty(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("it is empty");
  return value;
}

function positiveInt(value: string): number {
  const n = decimalInteger(value);
  if (n === undefined || n < 1) {
    throw new InvalidArgumentError("expected a positive integer in decimal digits");
  }
  return n;
}

/** Prints an error as one line plus details on stderr and returns its exit code. */
function report(e: unknown): number {
  const paint = paintFor(Deno.stderr);
  const print = (line: string, details: string[] = []) => {
    // A message may quote a server's answer or a tool's error: escape sequences in it are shown as text.
    console.error(paint.red(`error: ${cleanForTerminal(line)}`));
    for (const d of details) console.error(`  ${cleanForTerminal(d)}`);
  };
  if (e instanceof CommanderError) {
    // Commander has printed its message (or the help) already.
    return ["commander.helpDisplayed", "commander.version", "commander.help"].includes(e.code)
      ? EXIT_OK
      : EXIT_USER_ERROR;
  }
  if (e instanceof CliError) {
    print(e.message, e.details);
    return e.exitCode;
  }
  if (e instanceof ConfigError) {
    const errors = e.diagnostics.filter((d) => d.severity === "error");
    print(`the project has ${errors.length} error(s)`);
    formatDiagnostics(e.diagnostics, Deno.cwd(), paint).forEach((l) => console.error(`  ${l}`));
    return EXIT_USER_ERROR;
  }
  if (
    e instanceof NatsServerNotFoundError || e instanceof NatsUnavailableError ||
    e instanceof NatsStoreInUseError || e instanceof EnvSettingError
  ) {
    print(e.message);
    return EXIT_USER_ERROR;
  }
  if (e instanceof NatsServerStartError) {
    print(e.message, e.output.trim().split("\n").slice(-5));
    return EXIT_INTERNAL;
  }
  if (e instanceof Deno.errors.AddrInUse) {
    print(`the port is already in use: ${e.message}`, [`Choose another with --port or ${ENV.port}.`]);
    return EXIT_USER_ERROR;
  }
  print(
    `internal error: ${e instanceof Error ? e.message : String(e)}`,
    e instanceof Error && e.stack ? e.stack.split("\n").slice(1, 6).map((l) => l.trim()) : [],
  );
  return EXIT_INTERNAL;
}
