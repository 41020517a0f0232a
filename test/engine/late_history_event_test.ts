/**
 * Fire-and-forget history events (`task.dispatched`, `task.started`, `task.canceled`: published without
 * waiting, see event_recorder.ts) of an activation that land after a later activation read the history change
 * nothing in its replay (outside report R-E1, hypothesis 2). The later activation here is the same engine taking
 * back its own parked holding (Leases.resumed): no take-over is appended and the late events carry the very
 * revision of the holding that reads, so no fence leaves them out. They are harmless all the same: the replay
 * fold ignores `task.canceled`, and a late `task.started` of the attempt under way never moves a wait's status
 * nor a terminal record (replay_state.ts foldTask). Held back here by the test far longer than NATS could
 * (until after the execution's end): a fire-and-forget event of a parked activation is followed on the same
 * connection by an awaited write to the same stream, except a branch's `task.canceled`. Real engine, real
 * nats-server.
 */
import assert from "node:assert/strict";
import { startEngine } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { readExecutionEvents } from "../../engine/history/read_history.ts";
import { foldReplayState } from "../../engine/history/replay_state.ts";
import { Bus, type BusMessage, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { writeProject } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";
import { until } from "../support/until.ts";

const PROJECT = {
  "compozy.yaml": "name: late\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: main
tasks:
  - id: p
    type: parallel
    strategy: race
    tasks:
      - { id: quick, type: wait, signal: a }
      - { id: lost, type: wait, signal: b }
  - id: w
    type: wait
    signal: go
  - { id: after, type: aggregate, outputs: { got: "{{ .tasks.w.output.n }}" } }
`,
};

/** A bus that holds back the race loser's `task.canceled` and the last wait's `task.started` until released. */
class LateBus extends Bus {
  readonly heldBack: BusMessage[] = [];

  override publishCoreIfFits(message: BusMessage): boolean {
    const task = (message as { task?: { id: string } }).task?.id;
    const late = (message.$typeName === "compozy.v1.TaskExecutionCanceled" && task === "p/lost") ||
      (message.$typeName === "compozy.v1.TaskExecutionStarted" && task === "w");
    if (!late) return super.publishCoreIfFits(message);
    this.heldBack.push(message);
    return true;
  }

  releaseAll(): void {
    for (const message of this.heldBack.splice(0)) assert.ok(super.publishCoreIfFits(message));
  }
}

Deno.test({
  name:
    "fire-and-forget events stored after a resumed activation read the history change nothing in the replay",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await writeProject(PROJECT);
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "engine-test", role: "engine" });
    await provisionJetStream(nc);
    const bus = new LateBus(nc, { source: "engine" });
    const engine = await startEngine({ nc, bus, project: await loadProject(dir), instanceId: "engine-test" });
    try {
      const { client } = engine;
      const { execId } = await client.trigger("main", {});
      const types = async () => (await client.events(execId)).map((e) => e.type);
      const parked = () => until(() => Promise.resolve(engine.activeExecutions() === 0), 10_000);
      await until(
        async () => (await types()).filter((t) => t === "task.waiting_started").length === 2,
        10_000,
      );
      await parked();
      // The race's winner: the loser is canceled (held back), and the flow parks at `w` (its start held back).
      await client.signal(execId, "a", {});
      await until(
        async () => (await types()).filter((t) => t === "task.waiting_started").length === 3,
        10_000,
      );
      await parked();
      assert.equal(bus.heldBack.length, 2, "the loser's cancel and w's start are held back");
      // The next activation reads the history without them, and the execution ends.
      await client.signal(execId, "go", { n: 7 });
      const ended = await client.waitForEnd(execId, 10_000);
      assert.equal(ended.status, "SUCCESS");
      const read = await readExecutionEvents(bus.js, ended.correlation_id, execId);
      assert.ok(!read.some((e) => e.type === "workflow.taken_over"), "each activation resumed its holding");

      bus.releaseAll();
      let all = read;
      await until(async () => {
        all = await readExecutionEvents(bus.js, ended.correlation_id, execId);
        return all.length === read.length + 2;
      }, 10_000);
      const late = all.slice(read.length);
      assert.deepEqual(late.map((e) => e.type), ["task.canceled", "task.started"]);
      // Not fenced (the resumed holding's revision), and the replay is the same with or without them.
      assert.deepEqual(
        (await client.events(execId)).slice(-2).map((e) => e.type),
        ["task.canceled", "task.started"],
      );
      assert.deepEqual(foldReplayState(all), foldReplayState(read));
      const state = foldReplayState(all)!;
      assert.equal(state.outcome?.status, "SUCCESS");
      assert.deepEqual(state.outcome?.output, { got: 7 });
      assert.equal(state.tasks.get("w")?.status, "success");
      // The execution's document stays ended.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await client.get(execId))?.status, "SUCCESS");
    } finally {
      await engine.stop();
      await nc.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
