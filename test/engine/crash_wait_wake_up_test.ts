/**
 * Model crash seed 140578: a wake-up that reaches the replay of a parallel after a crash (a wait's time-out,
 * a task's time-out, a signal) is applied as soon as the replay reaches its task, not once a sibling branch's
 * re-sent call ends. The wake-up found its task not yet registered (the parallel comes after other steps, so the
 * replay reaches it some awaits after the activating command is delivered) and waited for the driver to be
 * idle, that is for the call; in the seed each later engine died before that, and the call's failure, recorded
 * first, became the parallel's error. Real engine processes, real nats-server, a scripted runtime here.
 */
import assert from "node:assert/strict";
import type { CrashStack } from "../support/engine_process.ts";
import { startCrashStack } from "../support/engine_process.ts";
import { until } from "../support/until.ts";

/** `first` and a collection, then a parallel of `branch` and a call that is re-run after the kill. */
function workflow(branch: string): string {
  return `id: main
tools:
  - id: quick
    execute: ./t.ts
  - id: slow
    execute: ./t.ts
tasks:
  - id: first
    use: tool(id=quick)
  - id: each
    type: collection
    items: [a, b, c]
    task:
      id: item
      use: tool(id=quick)
  - id: par
    type: parallel
    tasks:
      - ${branch}
      - id: call
        use: tool(id=slow)
`;
}

interface Run {
  status: string;
  code?: string;
  /** The history, one line per event: type, task, time. */
  history: string[];
  /** Where the first event of `type` (of task `task`, if given) is in the history; -1 if none. */
  at(type: string, task?: string): number;
}

/** How long the call's re-run lasts at most: well after the wake-up under test (a 4 s time-out, or at once). */
const RERUN_MS = 8_000;

/**
 * Runs `branch` beside the call; the engine is killed once `branch` waits and the call's first attempt runs,
 * then started again at once (`whileDown` runs in between). With a long ack wait, the execute command the
 * killed engine held comes back only after the test: the wake-up under test is what activates the replay.
 * The call's re-run ends once the wake-up (`wakeUp`, an event of the branch's task) is in the history, or
 * after RERUN_MS: the engine that makes the wake-up wait for the call records it only after the call's end.
 */
async function crashDuringCall(
  branch: string,
  callRerun: "fails" | "succeeds",
  wakeUp: { type: string; task: string },
  whileDown: (stack: CrashStack, execId: string) => Promise<void> = () => Promise.resolve(),
): Promise<Run> {
  const attempts: number[] = [];
  let execId = "";
  const taskOf = (data: unknown) => (data as { task?: { id?: string } }).task?.id ?? "";
  const wakeUpOrRerunLimit = async () => {
    const deadline = Date.now() + RERUN_MS;
    while (Date.now() < deadline) {
      const events = await stack.client.events(execId);
      if (events.some((e) => e.type === wakeUp.type && taskOf(e.data) === wakeUp.task)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stack = await startCrashStack({
    "compozy.yaml": "name: crash-wait-wake-up\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml": workflow(branch),
    "t.ts": "export default (input: unknown) => input;\n",
  }, {
    quick: (input) => input,
    // The first call dies with its engine; the re-run (attempt 2) ends after the wake-up under test.
    slow: async (_input, call) => {
      attempts.push(call.attempt);
      if (call.attempt === 1) return await new Promise(() => {});
      await wakeUpOrRerunLimit();
      if (callRerun === "fails") throw new Error("the re-run failed");
      return { ok: true };
    },
  }, { instanceId: "e", ackWaitMs: 60_000 });
  const { client } = stack;
  try {
    ({ execId } = await client.trigger("main", {}));
    await until(async () =>
      attempts.length === 1 && (await client.events(execId)).some((e) => e.type === "task.waiting_started")
    );
    await stack.killEngine();
    await whileDown(stack, execId);
    stack.restartEngine();
    const state = await client.waitForEnd(execId, 60_000);
    const events = await client.events(execId);
    const history = events.map((e) => `${e.type} ${taskOf(e.data)} ${e.time}`);
    assert.ok(attempts.includes(2), `the call was not re-sent (${attempts}):\n${history.join("\n")}`);
    return {
      status: state.status,
      code: state.error?.code,
      history,
      at: (type, task) =>
        events.findIndex((e) => e.type === type && (task === undefined || taskOf(e.data) === task)),
    };
  } finally {
    await stack.close();
  }
}

Deno.test({
  name: "a wait's time-out that activates a replay fires before a sibling's re-sent call ends",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const run = await crashDuringCall("{ id: w, type: wait, signal: go, timeout: 4s }", "fails", {
      type: "task.waiting_timed_out",
      task: "par/w",
    });
    const history = run.history.join("\n");
    // Before the fix: the time-out recorded after the re-run's failure, which became the parallel's error.
    assert.ok(run.at("task.waiting_timed_out", "par/w") >= 0, history);
    assert.ok(run.at("task.waiting_timed_out", "par/w") < run.at("task.failed", "par/call"), history);
    assert.equal(run.status, "FAILED", history);
    assert.equal(run.code, "wait_timeout", history);
  },
});

Deno.test({
  name: "a task's time-out that activates a replay fires before a sibling's re-sent call ends",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const run = await crashDuringCall("{ id: nap, type: sleep, duration: 30s, timeout: 4s }", "fails", {
      type: "task.failed",
      task: "par/nap",
    });
    const history = run.history.join("\n");
    // Before the fix: the sleep's time-out recorded after the re-run's failure, which became the parallel's.
    assert.ok(run.at("task.failed", "par/nap") >= 0, history);
    assert.ok(run.at("task.failed", "par/nap") < run.at("task.failed", "par/call"), history);
    assert.equal(run.status, "FAILED", history);
    assert.equal(run.code, "task_timeout", history);
  },
});

Deno.test({
  name: "a signal that activates a replay ends its wait before a sibling's re-sent call ends",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const run = await crashDuringCall(
      "{ id: w, type: wait, signal: go }",
      "succeeds",
      { type: "task.waiting_ended", task: "par/w" },
      (stack, execId) => stack.client.signal(execId, "go", { n: 1 }).then(() => {}),
    );
    const history = run.history.join("\n");
    // Before the fix: the wait's end recorded after the re-run's success.
    assert.ok(run.at("task.waiting_ended", "par/w") >= 0, history);
    assert.ok(run.at("task.waiting_ended", "par/w") < run.at("task.success", "par/call"), history);
    assert.equal(run.status, "SUCCESS", history);
  },
});
