/**
 * The zombie-writer fence (docs/engine.md, "The server-side fence"): engine A is paused (SIGSTOP) with its
 * record of a slow tool step's success handed to the network but not yet stored; engine B takes the
 * execution over once A's lease expires, runs the step again, and A's write is stored while B's attempt
 * runs. Neither the state nor the history may show A's result: B's take-over fences it.
 *
 * Real parts: a nats-server with the users of `compozy dev`, two engines and a runtime as `compozy start`
 * processes, sandboxes. A reaches the server through a relay whose uplink the test holds just before the
 * tool returns (HeldLink): with A stopped, that is a paused VM, whose bytes in flight arrive when it runs
 * again (a SIGSTOP alone lets the kernel send them at once, and A's own clock then refuses every later
 * write). The tool waits for a file per attempt, so which engine runs which attempt is the test's choice.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { createExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { readRunEvents, type StoredEvent } from "../../engine/history/read_history.ts";
import { leaseRevisionOf } from "../../engine/history/lease_fence.ts";
import { Bus, credentialsEnv, type NatsRole } from "../../pkg/nats/mod.ts";
import { writeProject } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";
import { type CompozyProcess, spawnCompozy } from "./support/dev_server.ts";
import { HeldLink } from "./support/held_link.ts";
import { untilOpened } from "./support/until_opened.ts";

/** Generous bounds for a loaded machine: the lease TTL (15 s) and redeliveries come first. */
const TAKE_OVER_WITHIN_MS = 120_000;

function project(dir: string): Record<string, string> {
  return {
    "compozy.yaml": "name: zombie-fence\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml": `id: slow\ntools:\n  - id: slow\n    execute: ./t.ts\n    timeout: 300s\n` +
      `    permissions: { write: ["${dir}"], read: ["${dir}"] }\n` +
      `tasks:\n  - id: step\n    use: tool(id=slow)\n    with: { n: 1 }\n`,
    // Logs its start, waits for `go-<attempt>`, returns which attempt ran.
    "t.ts": `export default async (_input: unknown, ctx: { attempt: number }) => {
  const dir = ${JSON.stringify(dir)};
  await Deno.writeTextFile(dir + "/calls.log", "start " + ctx.attempt + "\\n", { append: true });
  while (!(await Deno.stat(dir + "/go-" + ctx.attempt).then(() => true, () => false))) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return { attempt: ctx.attempt };
};
`,
  };
}

Deno.test({
  name:
    "zombie fence: a paused engine's write stored after another engine took over is in no state or history",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const nats = await startTestNats();
    const callDir = await Deno.makeTempDir({ prefix: "compozy-zombie-" });
    const dir = await writeProject(project(callDir));
    const link = HeldLink.start(nats.plainUrl);
    const env = (role: NatsRole, url: string) => ({
      NATS_URL: url,
      ...credentialsEnv(nats.auth.users[role]),
      COMPOZY_SANDBOX_START_TIMEOUT_MS: "60000",
      // The state events A held come back to B within seconds.
      COMPOZY_ACK_WAIT_MS: "3000",
      COMPOZY_LOG_LEVEL: "info",
    });
    const start = (role: NatsRole, id: string, url = nats.plainUrl) =>
      spawnCompozy(["start", "--role", role, "--cwd", dir, "--instance-id", id], env(role, url));
    const engineA = start("engine", "engine-a", link.url);
    const processes: CompozyProcess[] = [engineA, start("runtime", "runtime-1")];
    let stopped = false;
    let stopLive: (() => void) | undefined;
    const nc = await nats.connectAs("api", "zombie-fence-test");
    try {
      const bus = new Bus(nc, { source: "test" });
      const client = await untilOpened(async () =>
        createExecutionClient({ nc, bus, project: await loadProject(dir) })
      );
      const { execId } = await client.trigger("slow", {});
      // The live history (SSE) as a viewer following the run from its start sees it.
      const live: string[] = [];
      const stopWatching = await client.watchEvents(execId, (e) => {
        const revision = (e.data as { metadata?: { leaseRevision?: string } }).metadata?.leaseRevision ?? "0";
        const attempt = (e.data as { attempt?: number }).attempt ?? 0;
        live.push(`${e.type}:${attempt}:${revision}`);
      }, (lost) => live.push(`lost: ${lost.message}`));
      stopLive = stopWatching;
      // Engine A (the only one) accepted it and runs attempt 1.
      await until(() => calls(callDir).then((c) => c.includes("start 1")), 120_000, "attempt 1 started on A");
      const engineB = start("engine", "engine-b");
      processes.push(engineB);

      // A pauses with its record of attempt 1's success in flight: held on its way, then the process stopped.
      link.hold();
      await Deno.writeTextFile(join(callDir, "go-1"), "");
      await link.heldMatching(/PUB compozy\.[^ ]+\.task\.evts\.[^ ]+\.success /, 60_000);
      Deno.kill(engineA.pid, "SIGSTOP");
      stopped = true;

      // B takes the execution over once A's lease expires, and runs the step again.
      await until(
        () => calls(callDir).then((c) => c.includes("start 2")),
        TAKE_OVER_WITHIN_MS,
        "B ran attempt 2",
      );
      // A runs again: its write in flight is stored now, after B's take-over, while B's attempt runs.
      link.release();
      Deno.kill(engineA.pid, "SIGCONT");
      stopped = false;
      const js = jetstream(nc);
      const raw = await until(
        async () => {
          const events = await readRunEvents(js, execId);
          return successes(events).some((e) => attemptOf(e) === 1) ? events : undefined;
        },
        60_000,
        "A's late success stored",
      );
      const late = successes(raw).find((e) => attemptOf(e) === 1)!;
      const rerun = raw.find((e) => e.type === "task.started" && attemptOf(e) === 2);
      assert.ok(
        rerun && rerun.seq < late.seq,
        `A's write was stored after B's re-run started: ${types(raw)}`,
      );

      await Deno.writeTextFile(join(callDir, "go-2"), "");
      const state = await client.waitForEnd(execId, 120_000);
      const recorded = `history: ${types(await readRunEvents(js, execId))}`;
      assert.equal(state.status, "SUCCESS", `${JSON.stringify(state.error)}; ${recorded}`);
      assert.deepEqual(state.output, { attempt: 2 });
      assert.deepEqual(
        state.tasks.map((t) => [t.status, t.output]),
        [["SUCCESS", { attempt: 2 }]],
        `the task's state is B's result, not the paused engine's; ${recorded}`,
      );

      // The history as the API and a replay see it: nothing of A after B's take-over.
      const history = await client.events(execId);
      const takeOver = history.find((e) => e.type === "workflow.taken_over");
      assert.ok(takeOver, `B appended its take-over: ${history.map((e) => e.type).join(" ")}`);
      const takenAt = Number(
        (takeOver.data as { metadata: { leaseRevision: string } }).metadata.leaseRevision,
      );
      const afterTakeOver = history.filter((e) => e.seq > takeOver.seq);
      const fromOlderHolders = afterTakeOver.filter((e) => {
        const revision = Number(
          (e.data as { metadata?: { leaseRevision?: string } }).metadata?.leaseRevision ?? 0,
        );
        return revision > 0 && revision < takenAt;
      });
      assert.deepEqual(fromOlderHolders, [], "no event of an earlier holder after the take-over");
      assert.equal(
        history.filter((e) => e.type === "task.success").length,
        1,
        `one success in the history: ${history.map((e) => e.type).join(" ")}`,
      );
      assert.ok(leaseRevisionOf(late) < takenAt, "A's late write carries its older revision");
      await until(
        () => Promise.resolve(live.some((l) => l.startsWith("workflow.success"))),
        60_000,
        "the live end",
      );
      assert.deepEqual(
        live.filter((l) => l.startsWith("task.success")),
        [`task.success:2:${takenAt}`],
        `the live history shows B's success only: ${live.join(" ")}`,
      );
      console.log(
        `zombie fence: A's late success stored at seq ${late.seq} (revision ${leaseRevisionOf(late)}), ` +
          `after B's take-over at seq ${takeOver.seq} (revision ${takenAt}); ignored (load average ${
            (await Deno.readTextFile("/proc/loadavg")).split(" ")[0]
          })`,
      );
    } catch (e) {
      for (const [i, p] of processes.entries()) {
        console.error(`--- process ${i} (pid ${p.pid}), last lines:\n${p.lines.slice(-40).join("\n")}`);
      }
      throw e;
    } finally {
      stopLive?.();
      if (stopped) Deno.kill(engineA.pid, "SIGCONT");
      link.release();
      await nc.close();
      await Promise.all(processes.map((p) => p.stop()));
      link.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(callDir, { recursive: true });
    }
  },
});

function successes(events: StoredEvent[]): StoredEvent[] {
  return events.filter((e) => e.type === "task.success");
}

function attemptOf(event: StoredEvent): number {
  return (event.message as { attempt?: number }).attempt ?? 0;
}

function types(events: StoredEvent[]): string {
  return events.map((e) => `${e.seq}:${e.type}(${leaseRevisionOf(e)})`).join(" ");
}

async function calls(dir: string): Promise<string[]> {
  const text = await Deno.readTextFile(join(dir, "calls.log")).catch(() => "");
  return text.trim().split("\n").filter(Boolean);
}

/** Polls `check` until it returns a value other than false/undefined; fails after `timeoutMs` saying what. */
async function until<T>(
  check: () => Promise<T | false | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== false && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not seen within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
