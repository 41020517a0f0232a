/**
 * Logging set-up: formats, levels, environment variables and the tool-output helper, without NATS.
 *
 * It sets COMPOZY_LOG_LEVEL and LOG_FORMAT for its whole process (a `yaml` format makes every other
 * configureLogging call fail meanwhile): configure_test.ts runs it in a process of its own
 * (test/support/own_process.ts).
 */
import assert from "node:assert/strict";
import {
  configureLogging,
  forwardToolLog,
  getLogger,
  LoggerConfigError,
  resetLogging,
} from "../../pkg/logger/mod.ts";

/** Configures logging into an array of lines for the duration of `fn`. */
async function capture(
  options: Partial<Parameters<typeof configureLogging>[0]>,
  fn: () => void,
): Promise<string[]> {
  const lines: string[] = [];
  await configureLogging({ component: "engine", ...options, write: (line) => lines.push(line) });
  try {
    fn();
  } finally {
    await resetLogging();
  }
  return lines;
}

async function withEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  const previous = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    await fn();
  } finally {
    for (const [k, v] of Object.entries(previous)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

Deno.test("JSON lines parse and carry the record's properties", async () => {
  const lines = await capture({ format: "json", level: "info" }, () => {
    getLogger(["engine"]).info("Task {task_id} finished", { task_id: "get-weather", ms: 12, ok: true });
  });
  assert.equal(lines.length, 1);
  const parsed = JSON.parse(lines[0]);
  assert.equal(parsed.level, "info");
  assert.equal(parsed.category, "compozy.engine");
  assert.equal(parsed.message, "Task get-weather finished");
  assert.equal(parsed.task_id, "get-weather");
  assert.equal(parsed.ms, 12);
  assert.equal(parsed.ok, true);
  assert.ok(!Number.isNaN(Date.parse(parsed.time)));
});

Deno.test("records below the configured level are not written", async () => {
  const log = () => {
    const logger = getLogger(["engine"]);
    logger.trace("t");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    logger.fatal("f");
  };
  const levels = async (level: "trace" | "warn" | "fatal") =>
    (await capture({ format: "json", level }, log)).map((l) => JSON.parse(l).level);
  assert.deepEqual(await levels("trace"), ["trace", "debug", "info", "warn", "error", "fatal"]);
  assert.deepEqual(await levels("warn"), ["warn", "error", "fatal"]);
  assert.deepEqual(await levels("fatal"), ["fatal"]);
});

Deno.test("COMPOZY_LOG_LEVEL and LOG_FORMAT apply when no option is given", async () => {
  await withEnv({ COMPOZY_LOG_LEVEL: "WARNING", LOG_FORMAT: "pretty" }, async () => {
    const lines = await capture({}, () => {
      getLogger(["engine"]).info("hidden");
      getLogger(["engine"]).warn("Disk {pct}% full", { pct: 91 });
    });
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} WARN {2}compozy\.engine Disk 91% full\n$/);
  });
});

Deno.test("options win over the environment", async () => {
  await withEnv({ COMPOZY_LOG_LEVEL: "fatal", LOG_FORMAT: "pretty" }, async () => {
    const lines = await capture({ level: "info", format: "json" }, () => getLogger(["x"]).info("shown"));
    assert.equal(JSON.parse(lines[0]).message, "shown");
  });
});

Deno.test("bad settings are refused by name", async (t) => {
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    [
      "level option",
      () => configureLogging({ component: "engine", level: "loud" as never }),
      /'level' must be one of trace, debug, info, warn, error, fatal: current value is 'loud'/,
    ],
    [
      "format option",
      () => configureLogging({ component: "engine", format: "xml" as never }),
      /'format' must be one of pretty, json, auto: current value is 'xml'/,
    ],
    [
      "component",
      () => configureLogging({ component: "robot" as never }),
      /'component' must be one of workflow, task, agent, tool, engine, runtime, api/,
    ],
    [
      "instance id",
      () => configureLogging({ component: "api", instanceId: "host.1" }),
      /Invalid instance id 'host\.1'/,
    ],
  ];
  for (const [name, configure, message] of cases) {
    await t.step(name, async () => {
      await assert.rejects(configure, (e) => e instanceof LoggerConfigError && message.test(e.message));
    });
  }
  await t.step("COMPOZY_LOG_LEVEL", async () => {
    await withEnv({ COMPOZY_LOG_LEVEL: "verbose" }, async () => {
      await assert.rejects(
        () => configureLogging({ component: "engine" }),
        (e) =>
          e instanceof LoggerConfigError && e.option === "COMPOZY_LOG_LEVEL" && /'verbose'/.test(e.message),
      );
    });
  });
  await t.step("LOG_FORMAT", async () => {
    await withEnv({ LOG_FORMAT: "yaml" }, async () => {
      await assert.rejects(
        () => configureLogging({ component: "engine" }),
        (e) => e instanceof LoggerConfigError && e.option === "LOG_FORMAT",
      );
    });
  });
});

Deno.test("getLogger puts every category under compozy, once", async () => {
  const lines = await capture({ format: "json", level: "info" }, () => {
    getLogger(["runtime", "pool"]).info("a");
    getLogger(["compozy", "runtime", "pool"]).info("b");
  });
  assert.deepEqual(lines.map((l) => JSON.parse(l).category), [
    "compozy.runtime.pool",
    "compozy.runtime.pool",
  ]);
});

Deno.test("forwardToolLog writes a tool's line verbatim with its execution ids", async () => {
  const lines = await capture({ format: "json", level: "debug" }, () => {
    forwardToolLog("warn", "got {not a placeholder}", {
      correlationId: "c-1",
      taskExecId: "t-1",
      toolId: "weather_tool",
      toolExecId: "x-1",
    }, { stream: "stderr" });
    forwardToolLog("trace", "below the level", { correlationId: "c-1", toolId: "w", toolExecId: "x-2" });
  });
  assert.equal(lines.length, 1);
  const parsed = JSON.parse(lines[0]);
  assert.equal(parsed.level, "warn");
  assert.equal(parsed.category, "compozy.tool");
  assert.equal(parsed.message, "got {not a placeholder}");
  assert.equal(parsed.correlation_id, "c-1");
  assert.equal(parsed.tool_exec_id, "x-1");
  assert.equal(parsed.stream, "stderr");
});

Deno.test("a real process writes JSON lines to a piped stderr, and pretty lines without colour on request", async (t) => {
  const fixture = new URL("./fixtures/log_lines.ts", import.meta.url).pathname;
  const run = async (env: Record<string, string>) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", fixture],
      env,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 0);
    return new TextDecoder().decode(output.stderr).trimEnd().split("\n");
  };
  await t.step("auto on a pipe is JSON; the default level is info", async () => {
    const lines = await run({ LOG_FORMAT: "", COMPOZY_LOG_LEVEL: "" });
    assert.deepEqual(lines.map((l) => JSON.parse(l).level), ["info", "warn"]);
    assert.equal(JSON.parse(lines[0]).workflow_id, "weather");
  });
  await t.step("LOG_FORMAT=pretty and COMPOZY_LOG_LEVEL=debug", async () => {
    const lines = await run({ LOG_FORMAT: "pretty", COMPOZY_LOG_LEVEL: "debug" });
    assert.equal(lines.length, 3);
    assert.match(
      lines[1],
      / INFO {2}compozy\.fixture Workflow weather started attempt=1$/,
    );
    assert.ok(lines.every((l) => !l.includes("\x1b[")));
  });
});
