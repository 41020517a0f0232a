/**
 * A runtime process dies with tool calls in flight (issue 12): the engine learns it within seconds (the call's
 * holder subject has no responders, engine/domain/task/runtime_call.ts) and sends each call again, to the
 * runtime still alive; no execution fails, and no call is run again beyond the ones the dead runtime held.
 *
 * Real parts: a nats-server with the users of `compozy dev`, an engine and two runtimes as `compozy start`
 * processes, sandboxes. The tool blocks until the test releases it, so every call is known to be in flight on
 * the first runtime (the only one running when they start) when that runtime's process group gets SIGKILL. The
 * tool's limit (120 s) is far above the bound the re-sent calls must start within: without the fail-over they
 * would wait that limit out and fail `runtime_unavailable` (the workflow has no retry).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createExecutionClient, type ExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, credentialsEnv, type NatsRole } from "../../pkg/nats/mod.ts";
import { writeProject } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";
import { type CompozyProcess, spawnCompozy } from "./support/dev_server.ts";
import { readHistories } from "./support/histories.ts";
import { RUNTIME_HEALTH_SUBJECT } from "../../pkg/runtime/service.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { untilOpened } from "./support/until_opened.ts";

/** As many as one runtime runs at once here (its pool's minimum of 4 sandbox processes). */
const RUNS = 4;
/** A frozen runtime's silence, set through the environment: a fifth of the default (10 s). */
const SILENT_AFTER_MS = 2_000;
/** Generous for a loaded machine, and far below the tool's 120 s limit that a lost call would wait out. */
const RESENT_WITHIN_MS = 60_000;

function project(callLog: string, release: string): Record<string, string> {
  return {
    "compozy.yaml": "name: runtime-failover\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml": `id: held\ntools:\n  - id: held\n    execute: ./t.ts\n    timeout: 120s\n` +
      `    permissions: { write: ["${callLog}"], read: ["${release}"] }\n` +
      `tasks:\n  - id: step\n    use: tool(id=held)\n    with: { n: 1 }\n`,
    // Logs its start, waits for the release file, logs its end.
    "t.ts": `export default async (input: unknown, ctx: { workflowExecId: string }) => {
  const log = (what: string) =>
    Deno.writeTextFile(${
      JSON.stringify(callLog)
    }, what + " " + ctx.workflowExecId + " " + Date.now() + "\\n", { append: true });
  await log("start");
  while (!(await Deno.stat(${JSON.stringify(release)}).then(() => true, () => false))) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await log("end");
  return input;
};
`,
  };
}

interface CallLine {
  what: "start" | "end";
  execId: string;
  at: number;
}

interface FailoverStack {
  callLog: string;
  release: string;
  nc: NatsConnection;
  client: ExecutionClient;
  engine: CompozyProcess;
  runtimeA: CompozyProcess;
  /** Starts another `compozy start --role <role>` process, stopped with the stack. */
  start(role: NatsRole, id: string): CompozyProcess;
}

/**
 * A nats-server with the users of `compozy dev`, an engine and one runtime as `compozy start` processes (the
 * engine's environment with `engineEnv` added), and a client as the API; all stopped after `body`.
 */
async function withFailoverStack(
  engineEnv: Record<string, string>,
  body: (stack: FailoverStack) => Promise<void>,
): Promise<void> {
  const nats = await startTestNats();
  const logDir = await Deno.makeTempDir({ prefix: "compozy-runtime-failover-" });
  const callLog = join(logDir, "calls.log");
  const release = join(logDir, "release");
  await Deno.writeTextFile(callLog, "");
  const dir = await writeProject(project(callLog, release));
  const env = (role: NatsRole) => ({
    NATS_URL: nats.plainUrl,
    ...credentialsEnv(nats.auth.users[role]),
    // A cold sandbox start can exceed the default 10 s on a loaded machine: no fail-over's doing.
    COMPOZY_SANDBOX_START_TIMEOUT_MS: "60000",
    COMPOZY_LOG_LEVEL: "info", // The engine says why it sends a call again (asserted).
    LOG_FORMAT: "json",
    ...(role === "engine" ? engineEnv : {}),
  });
  const processes: CompozyProcess[] = [];
  const start = (role: NatsRole, id: string) => {
    const started = spawnCompozy(["start", "--role", role, "--cwd", dir, "--instance-id", id], env(role));
    processes.push(started);
    return started;
  };
  const engine = start("engine", "engine-a");
  const runtimeA = start("runtime", "runtime-a");
  // As the API: the engine and the runtimes answer into the API's inbox prefix, as they would in production.
  const nc = await nats.connectAs("api", "runtime-failover-test");
  try {
    const bus = new Bus(nc, { source: "test" });
    const client = await untilOpened(async () =>
      createExecutionClient({ nc, bus, project: await loadProject(dir) })
    );
    await body({ callLog, release, nc, client, engine, runtimeA, start });
  } finally {
    await nc.close();
    await Promise.all(processes.map((p) => p.stop()));
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(logDir, { recursive: true });
  }
}

Deno.test({
  name:
    "runtime fail-over: kill -9 of a runtime with calls in flight; they run again on the other, none fails",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withFailoverStack({}, async ({ callLog, release, nc, client, engine, runtimeA, start }) => {
      const ids: string[] = [];
      for (let i = 0; i < RUNS; i++) ids.push((await client.trigger("held", { seed: i })).execId);
      // Every call is in flight on runtime-a: the only runtime, and each call waits for the release.
      await untilLines(callLog, (lines) => starts(lines).length >= RUNS, 120_000, "every call started");
      start("runtime", "runtime-b");
      await untilRuntimesAnswer(nc, 2);
      await runtimeA.killGroup();
      const killedAt = Date.now();
      const lines = await untilLines(
        callLog,
        (lines) => starts(lines).length >= 2 * RUNS,
        RESENT_WITHIN_MS,
        "every call in flight on the killed runtime started again",
      );
      const resent = starts(lines).slice(RUNS);
      assert.deepEqual(new Set(resent.map((c) => c.execId)), new Set(ids), "each execution's call, once");
      const failover = resent.map((c) => c.at - killedAt).sort((a, b) => a - b);
      assert.ok(failover[0] > 0, "no call started again before the kill");
      // The engine says why it sent each call again; its log's time is when it did.
      const warned = engine.lines.filter((l) => /The runtime running call .* is gone/.test(l));
      assert.equal(
        warned.length,
        RUNS,
        `the engine said why it sent each call again:\n${engine.lines.join("\n")}`,
      );
      const sentAgain = warned.map((l) => Date.parse(JSON.parse(l).time) - killedAt).sort((a, b) => a - b);
      console.log(
        `runtime fail-over: the ${RUNS} calls were sent again ${
          sentAgain.join(", ")
        } ms after the kill and ` +
          `started (in a new sandbox) ${failover.join(", ")} ms after it ` +
          `(load average ${(await Deno.readTextFile("/proc/loadavg")).split(" ")[0]})`,
      );
      await Deno.writeTextFile(release, "");
      for (const id of ids) {
        const state = await client.waitForEnd(id, 120_000);
        assert.equal(
          state.status,
          "SUCCESS",
          `execution ${id} ended ${state.status}: ${JSON.stringify(state.error)}`,
        );
      }
      // The history tells the same: each runtime recorded its receipt of the call (the killed one's and the
      // live one's, `tool.started`), and the task succeeded once.
      for (const [id, events] of await readHistories(client, ids)) {
        const count = (type: string) => events.filter((e) => e.type === type).length;
        assert.deepEqual(
          { received: count("tool.started"), succeeded: count("task.success") },
          { received: 2, succeeded: 1 },
          `execution ${id}'s history: ${events.map((e) => e.type).join(", ")}`,
        );
      }
      // Each call ran to its end once: the killed runtime's sandboxes died with it, and no call of the live
      // runtime was sent twice.
      const ends = parse(await Deno.readTextFile(callLog)).filter((c) => c.what === "end");
      assert.deepEqual(ends.map((c) => c.execId).sort(), [...ids].sort());
      assert.equal(
        starts(parse(await Deno.readTextFile(callLog))).length,
        2 * RUNS,
        `no further sends; calls (ms after the kill): ${
          JSON.stringify(parse(await Deno.readTextFile(callLog)).map((c) => ({ ...c, at: c.at - killedAt })))
        }\nengine:\n${engine.lines.join("\n")}`,
      );
    }),
});

Deno.test({
  name:
    "runtime fail-over: COMPOZY_RUNTIME_SILENT_AFTER_MS sets how long a frozen runtime keeps its call before it is sent to another",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withFailoverStack(
      { COMPOZY_RUNTIME_SILENT_AFTER_MS: String(SILENT_AFTER_MS) },
      async ({ callLog, release, nc, client, engine, runtimeA, start }) => {
        const { execId } = await client.trigger("held", { seed: "frozen" });
        await untilLines(callLog, (lines) => starts(lines).length >= 1, 120_000, "the call started");
        start("runtime", "runtime-b");
        await untilRuntimesAnswer(nc, 2);
        // Frozen, not dead: its socket stays open, so the engine's questions go unanswered rather than
        // meeting "no responders".
        runtimeA.signalGroup("SIGSTOP");
        try {
          await untilLines(
            callLog,
            (lines) => starts(lines).length >= 2,
            RESENT_WITHIN_MS,
            "the call held by the frozen runtime started again",
          );
          const silent = engine.lines.filter((l) =>
            /The runtime running call .* answered nothing for/.test(l)
          );
          assert.ok(
            silent.length >= 1,
            `the engine said why it sent the call again:\n${engine.lines.join("\n")}`,
          );
          // The silence it allowed is the configured one, not SILENT_AFTER_MS's default.
          assert.equal(JSON.parse(silent[0]).ms, SILENT_AFTER_MS, silent[0]);
          await Deno.writeTextFile(release, "");
          const state = await client.waitForEnd(execId, 120_000);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        } finally {
          runtimeA.signalGroup("SIGCONT");
        }
      },
    ),
});

function parse(text: string): CallLine[] {
  return text.trim().split("\n").filter(Boolean).map((line) => {
    const [what, execId, at] = line.split(" ");
    return { what: what as CallLine["what"], execId, at: Number(at) };
  });
}

function starts(lines: CallLine[]): CallLine[] {
  return lines.filter((c) => c.what === "start");
}

/** The call log once `done` holds for it; fails after `timeoutMs` saying what was awaited. */
async function untilLines(
  file: string,
  done: (lines: CallLine[]) => boolean,
  timeoutMs: number,
  what: string,
): Promise<CallLine[]> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const lines = parse(await Deno.readTextFile(file));
    if (done(lines)) return lines;
    if (Date.now() > deadline) {
      throw new Error(`not seen within ${timeoutMs} ms: ${what}; log:\n${JSON.stringify(lines)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until `count` runtime processes answer the health probe (runtime-b consumes its commands then). */
async function untilRuntimesAnswer(nc: NatsConnection, count: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    let answers = 0;
    const replies = await nc.requestMany(RUNTIME_HEALTH_SUBJECT, undefined, {
      strategy: "stall",
      stall: 500,
      maxWait: 3_000,
    });
    for await (const _ of replies) answers++;
    if (answers >= count) return;
    if (Date.now() > deadline) {
      throw new Error(`fewer than ${count} runtimes answered within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
