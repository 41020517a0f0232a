/**
 * Scale-out on a NATS cluster (issue 12): three nats-servers on loopback configured by the same module as
 * `compozy dev` (users per role, authenticated routes), every stream R3, two engines and two runtimes as
 * `compozy start --role ...` processes with their own users. Mid-run, one engine and the node leading the
 * streams are killed with SIGKILL. Every execution must end SUCCESS, no tool call for a task may be sent to a
 * runtime after that task's success was recorded, and all must end within a generous bound (fail-over times
 * belong in the benchmark, not here).
 *
 * Heavy (eight processes on a shared machine: about 1 to 2 minutes) but part of `make test`; COMPOZY_CLUSTER_RUNS
 * sets the number of executions (default 300).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { createExecutionClient, ENGINE_HEALTH_SUBJECT, type ExecutionClient } from "../../engine/mod.ts";
import { RUNTIME_HEALTH_SUBJECT } from "../../pkg/runtime/service.ts";
import { untilAnswered } from "../support/health.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import {
  Bus,
  connectNats,
  credentialsEnv,
  type NatsRole,
  roleConnectAuth,
  STREAMS,
} from "../../pkg/nats/mod.ts";
import { writeProject } from "../support/engine.ts";
import { startTestCluster } from "../support/nats_cluster.ts";
import { type CompozyProcess, spawnCompozy } from "./support/dev_server.ts";
import { reportFailure } from "./support/failure_report.ts";
import { readHistories } from "./support/histories.ts";
import { untilOpened } from "./support/until_opened.ts";

const RUNS = Number(Deno.env.get("COMPOZY_CLUSTER_RUNS") ?? 300);
const TASKS = 2;
/**
 * Generous: fail-over takes seconds (ack wait, a RAFT election), but a step whose sandbox cannot start on a
 * loaded machine is retried for up to ~100 s.
 */
const LIVENESS_MS = 180_000;

/** A tool that appends `<exec>/<task> <ms>` to a log file for every call, so the test sees re-runs. */
function project(callLog: string): Record<string, string> {
  const tasks = Array.from(
    { length: TASKS },
    // A retry: on this shared 2-core machine a sandbox's cold start (SES lockdown, module load) can exceed the
    // runtime's 10 s start limit, which fails that attempt with tool_timeout; that is no fail-over's doing.
    // Spread over about 100 s, the attempts outlast such a burst (5 attempts over 30 s did not, once, at a
    // load average of 24).
    (_, i) =>
      `  - id: step-${i}\n    use: tool(id=work)\n    with: { n: ${i} }\n    retry: { max_attempts: 8, backoff: { initial: 2s, max: 16s, factor: 2 } }\n`,
  )
    .join("");
  return {
    "compozy.yaml": "name: cluster\nworkflows:\n  - source: ./wf.yaml\nnats: { replicas: 3 }\n",
    "wf.yaml":
      `id: two\ntools:\n  - id: work\n    execute: ./t.ts\n    permissions: { write: ["${callLog}"] }\n` +
      `tasks:\n${tasks}`,
    "t.ts": `export default async (
  input: unknown,
  ctx: { workflowExecId: string; taskId: string; taskExecId: string; attempt: number },
) => {
  const line = [ctx.workflowExecId + "/" + ctx.taskId, Date.now(), ctx.taskExecId, ctx.attempt].join(" ");
  await Deno.writeTextFile(${JSON.stringify(callLog)}, line + "\\n", { append: true });
  return input;
};
`,
  };
}

Deno.test({
  name: "cluster: R3 on 3 nodes, 2 engines + 2 runtimes; kill -9 of an engine and of the stream leader",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const cluster = await startTestCluster(3);
    const logDir = await Deno.makeTempDir({ prefix: "compozy-cluster-calls-" });
    const callLog = join(logDir, "calls.log");
    await Deno.writeTextFile(callLog, "");
    const dir = await writeProject(project(callLog));
    const env = (role: NatsRole) => ({
      NATS_URL: cluster.plainUrl,
      ...credentialsEnv(cluster.auth.users[role]),
      COMPOZY_ACK_WAIT_MS: "1000",
      // At load averages of 40 on this 2-core machine a sandbox's cold start took more than the default 10 s
      // on every one of 8 attempts: no fail-over's doing, so the runtimes wait longer for it.
      COMPOZY_SANDBOX_START_TIMEOUT_MS: "60000",
      // Info: lost and taken-over leases, retries and given-up commands, for the report of a failure.
      COMPOZY_LOG_LEVEL: "info",
      LOG_FORMAT: "json",
    });
    const start = (role: NatsRole, id: string) =>
      spawnCompozy(["start", "--role", role, "--cwd", dir, "--instance-id", id], env(role));
    const named = new Map<string, CompozyProcess>([
      ["engine-a", start("engine", "engine-a")],
      ["engine-b", start("engine", "engine-b")],
      ["runtime-a", start("runtime", "runtime-a")],
      ["runtime-b", start("runtime", "runtime-b")],
    ]);
    const processes = [...named.values()];
    // What a failure report shows (see reportFailure): set once they exist.
    let reportClient: ExecutionClient | undefined;
    const ids: string[] = [];
    /** Executions seen not ended SUCCESS by the liveness bound (reported with their histories). */
    const stuck: string[] = [];
    let began = Date.now();
    // As the API: engines answer into the API's inbox prefix (a superuser's _INBOX gets no reply).
    const nc = await connectNats(cluster.plainUrl, {
      name: "cluster-test",
      auth: roleConnectAuth(cluster.auth, "api"),
    });
    try {
      const bus = new Bus(nc, { source: "test" });
      const jsm = await jetstreamManager(nc);
      // The engines provision R3 from compozy.yaml; wait until they did and answer.
      await waitFor(async () =>
        (await jsm.streams.info(STREAMS.events).catch(() => undefined))?.config.num_replicas === 3
      );
      // The client opens the state buckets (it reads each one's replicas), which the engines provision too.
      const project = await loadProject(dir);
      const client = await untilOpened(() => createExecutionClient({ nc, bus, project }));
      reportClient = client;
      // The streams exist once the first engine provisioned them; the second engine may still be starting.
      // Triggered before it answers, a short run (30 workflows) may kill the only engine up ten triggers in:
      // likely why a trigger once met "no responders" 25 times after the kills (docs/operations.md).
      const provisioned = Date.now();
      await untilAnswered(nc, ENGINE_HEALTH_SUBJECT, 2);
      await untilAnswered(nc, RUNTIME_HEALTH_SUBJECT, 2);
      console.log(`cluster test: both engines and runtimes answered ${Date.now() - provisioned} ms after R3`);
      began = Date.now();
      let engineKilledAt = 0;
      let nodeKilledAt = 0;
      let failover: Promise<string> | undefined;
      for (let i = 0; i < RUNS; i++) {
        ids.push((await client.trigger("two", { seed: i }, { idempotencyKey: `run-${i}` })).execId);
        if (i === Math.floor(RUNS / 3)) {
          await processes[0].killGroup().catch((e) => {
            throw new Error(`engine-a was gone before its kill:\n${processes[0].lines.join("\n")}`, {
              cause: e,
            });
          });
          engineKilledAt = Date.now();
        }
        if (i === Math.floor(RUNS / 2)) {
          const leader = (await jsm.streams.info(STREAMS.workflowCommands)).cluster?.leader;
          const index = cluster.nodes.findIndex((_, n) => `n${n + 1}` === leader);
          assert.ok(index >= 0, `the stream leader ${leader} is one of ours`);
          await cluster.nodes[index].kill();
          nodeKilledAt = Date.now();
          failover = watchFailover(jsm, client, ids[0], nodeKilledAt);
        }
      }
      const submitted = Date.now() - began;
      console.log(`cluster test: after the stream-leader node's kill: ${await failover}`);
      for (const id of ids) {
        const state = await untilDeadline(
          () => client.waitForEnd(id, Math.max(1_000, began + LIVENESS_MS - Date.now())),
          began + LIVENESS_MS,
        );
        if (state.status !== "SUCCESS") stuck.push(id);
        assert.equal(
          state.status,
          "SUCCESS",
          `execution ${id} ended ${state.status}: ${JSON.stringify(state.error)}`,
        );
      }
      const elapsed = Date.now() - began;
      // No recorded step runs twice: once a task's success is stored, no tool call of that task is sent to a
      // runtime again. A runtime records each call it receives (`tool.started`, stamped when received, with the
      // call's id: a UUIDv7 the engine minted as it first sent the call). A call sent before the record may
      // still be received and run after it (sent by the engine killed a moment later, to a runtime whose
      // loaded machine took seconds to read it): such in-flight duplicates are at-least-once delivery, counted
      // below, not re-runs. A call sent after the record is either a new call (its id is younger than the
      // record) or one sent again, and an engine stores the task's start again before it sends a call again
      // (startedBeforeResend, fenced by its lease): so no start of the task may be stored after its success.
      const recordedAt = new Map<string, number>();
      const received = new Map<string, { at: number; mintedAt: number }[]>();
      /** Tasks whose start was stored again after their success: a call sent again after the record. */
      const writtenAfterSuccess: string[] = [];
      for (const [id, events] of await readHistories(client, ids)) {
        const succeeded = new Set<string>();
        for (const event of events) {
          const data = event.data as {
            task?: { id: string };
            tool?: { execId: string };
            metadata: { time: string };
          };
          if (!data.task) continue; // The workflow's own events.
          const key = `${id}/${data.task.id}`;
          if (event.type === "tool.started") {
            const call = { at: Date.parse(data.metadata.time), mintedAt: uuidv7Millis(data.tool!.execId) };
            received.set(key, [...received.get(key) ?? [], call]);
          }
          // A stale holder's own late success is no re-run (the fold ignores it); a start is what precedes a send.
          if (succeeded.has(key) && event.type === "task.started") writtenAfterSuccess.push(key);
          if (event.type !== "task.success") continue;
          succeeded.add(key);
          const stored = await jsm.streams.getMessage(STREAMS.events, { seq: event.seq });
          recordedAt.set(key, stored!.timestamp ? new Date(stored!.timestamp).getTime() : Date.now());
        }
      }
      assert.equal(recordedAt.size, RUNS * TASKS);
      const calls = (await Deno.readTextFile(callLog)).trim().split("\n").map((line) => {
        const [key, at, taskExecId, attempt] = line.split(" ");
        return { key, at: Number(at), taskExecId, attempt: Number(attempt) };
      });
      const rel = (t: number) => t - began;
      const receivedAfter = [...received].flatMap(([key, calls]) =>
        calls.filter((c) => c.at > recordedAt.get(key)!).map((c) => ({
          key,
          mintedAt: rel(c.mintedAt),
          receivedAt: rel(c.at),
          successAt: rel(recordedAt.get(key)!),
        }))
      );
      const sentAfter = receivedAfter.filter((c) => c.mintedAt > c.successAt);
      const late = calls.filter((c) => c.at > recordedAt.get(c.key)!);
      let lateReport = "";
      if (receivedAfter.length > 0 || late.length > 0) {
        // What a failure needs to be understood: every call of those tasks, and when things happened.
        const keys = [...new Set([...receivedAfter, ...late].map((c) => c.key))];
        const details = await Promise.all(keys.map(async (key) => ({
          key,
          successAt: rel(recordedAt.get(key)!),
          calls: calls.filter((o) => o.key === key).map((o) => ({ ...o, at: rel(o.at) })),
          events: (await client.events(key.split("/")[0])).map((e) => {
            const data = e.data as { tool?: { execId?: string }; metadata?: { source?: string } };
            return `${e.type}@${rel(Date.parse(e.time))} ${data.metadata?.source ?? ""} ${
              data.tool?.execId ?? ""
            }`;
          }),
        })));
        lateReport =
          `engine killed at ${rel(engineKilledAt)} ms, node at ${rel(nodeKilledAt)} ms; calls run ` +
          `after their task's success was recorded:\n${JSON.stringify(details)}`;
        console.log(lateReport);
      }
      // The report goes in the assertion's message: CI keeps the end of the output, where the failures are.
      assert.deepEqual(
        sentAfter,
        [],
        `a tool call was sent to a runtime after its task's success was recorded; ${
          lateReport.slice(0, 6_000)
        }`,
      );
      assert.deepEqual(
        writtenAfterSuccess,
        [],
        `a task's start was stored again after its success; ${lateReport.slice(0, 6_000)}`,
      );
      console.log(
        `${RUNS} executions submitted in ${submitted} ms, all ended in ${elapsed} ms; ${calls.length} tool calls for ${
          RUNS * TASKS
        } tasks ` +
          `(${
            calls.length - RUNS * TASKS
          } re-runs of unrecorded steps; ${late.length} of them, sent before ` +
          `the success was recorded, ran after it; ${receivedAfter.length} calls sent before the record were received after it)`,
      );
      const engineLines = processes.slice(0, 2).flatMap((p) => p.lines);
      const count = (pattern: RegExp) => engineLines.filter((l) => pattern.test(l)).length;
      console.log(
        `engines logged: ${count(/Lost the lease/)} leases lost to another engine, ` +
          `${count(/could not be renewed within its TTL/)} leases expired unrenewed, ` +
          `${count(/given up/)} commands given up, ` +
          `${count(/did not show its end/)} ends written to the state from the history`,
      );
    } catch (e) {
      // Seen once in CI under load (an execution RUNNING after the liveness bound) and never alone: the
      // processes' output and the stuck executions' histories are what such a failure leaves to read.
      await reportFailure({ processes: named, client: reportClient, ids, stuck, began }).catch((report) =>
        console.error(`the failure report failed: ${report}`)
      );
      throw e;
    } finally {
      await nc.close();
      await Promise.all(processes.map((p) => p.stop()));
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(logDir, { recursive: true });
    }
  },
});

/**
 * The test's own reads (state, history) may time out while the cluster elects a new leader: that is not the
 * executions' liveness, which the deadline bounds. Retries until the deadline, then rethrows.
 */
async function untilDeadline<T>(fn: () => Promise<T>, deadline: number): Promise<T> {
  while (true) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline || !(e instanceof Error) || !/timeout/i.test(`${e.name} ${e.message}`)) {
        throw e;
      }
      console.log(`cluster test: a read timed out (${e.message}); retrying`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** The Unix milliseconds a UUIDv7 was minted at (its first 48 bits). */
function uuidv7Millis(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * How long after the node's kill each stream had a leader again and a history read answered: what a
 * fail-over costs here (printed, not asserted).
 */
async function watchFailover(
  jsm: JetStreamManager,
  client: ExecutionClient,
  execId: string,
  killedAt: number,
): Promise<string> {
  const names = [
    STREAMS.events,
    STREAMS.workflowCommands,
    STREAMS.taskCommands,
    "KV_compozy_leases",
    "KV_compozy_workflow_executions",
  ];
  const led = new Map<string, number>();
  let readAt = 0;
  const deadline = killedAt + 180_000;
  while (Date.now() < deadline && (led.size < names.length || !readAt)) {
    await Promise.all(
      names.filter((n) => !led.has(n)).map(async (name) => {
        const info = await jsm.streams.info(name).catch(() => undefined);
        if (info?.cluster?.leader) led.set(name, Date.now() - killedAt);
      }),
    );
    if (!readAt && await client.events(execId).then(() => true, () => false)) readAt = Date.now() - killedAt;
    await new Promise((r) => setTimeout(r, 250));
  }
  return [
    ...names.map((n) => `${n} led after ${led.get(n) ?? "> 180000"} ms`),
    `history read after ${readAt} ms`,
  ]
    .join(", ");
}
