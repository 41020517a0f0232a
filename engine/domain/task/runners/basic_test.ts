/**
 * The sub-workflow step of `basic`: what happens to a child whose start returns after its parent's driver
 * stopped. A driver that ended the execution cancels the child; a driver that was only given up (its lease
 * lost, its history unwritable: finding G3) must leave it to the replay that takes the execution over. A
 * child whose start returns after its task was given up (a time-out) is canceled.
 */
import assert from "node:assert/strict";
import { loadProject } from "../../project/mod.ts";
import { ResultScope } from "../template_scope.ts";
import { basicRunner } from "./basic.ts";
import { type DriverPort, ExecutionEnded, type TaskOf } from "./types.ts";
import { abortable } from "../../workflow/driver_support.ts";

async function parentAndChild() {
  const dir = await Deno.makeTempDir({ prefix: "compozy-basic-runner-" });
  await Deno.writeTextFile(
    `${dir}/compozy.yaml`,
    "name: demo\nworkflows: [{ source: ./parent.yaml }, { source: ./child.yaml }]\n",
  );
  await Deno.writeTextFile(
    `${dir}/parent.yaml`,
    "id: parent\ntasks: [{ id: sub, use: workflow(id=child) }]\n",
  );
  await Deno.writeTextFile(
    `${dir}/child.yaml`,
    "id: child\ntasks: [{ id: nap, type: sleep, duration: 1s }]\n",
  );
  try {
    return await loadProject(dir, { processEnv: {} });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A driver whose execution stops (`how`) while the child's start is in flight, or (`given_up`) whose task's
 * scope is aborted then (its time-out, a decided race); records the cancels.
 */
function stoppingDriver(
  project: Awaited<ReturnType<typeof parentAndChild>>,
  how: "ended" | "abandoned" | "given_up",
  giveUp?: AbortController,
) {
  const canceled: string[][] = [];
  const state = { ended: false, abandoned: false };
  const driver = {
    project,
    workflow: project.workflows.get("parent")!,
    execId: "parent-exec",
    correlationId: "parent-exec",
    get isEnded() {
      return state.ended;
    },
    get isAbandoned() {
      return state.abandoned;
    },
    services: {
      children: {
        start: async () => {
          if (how === "given_up") {
            giveUp!.abort(new Error("task 'sub' timed out"));
            await new Promise((r) => setTimeout(r, 10)); // The start's reply comes after the give-up.
          } else {
            state.ended = true;
            state.abandoned = how === "abandoned";
          }
          return "child-exec";
        },
        // A given-up task's child is canceled through the service, under `recorded` (see cancelGivenUp).
        cancel: (_d: unknown, ids: string[]) => {
          canceled.push(ids);
          return Promise.resolve();
        },
      },
    },
    recorded: (write: Promise<void>) => write,
    // As the driver's: with `abort`, the branch stops waiting for the I/O when it is given up.
    track: <T>(p: Promise<T>, abort?: AbortSignal) => abortable(p, abort),
    cancelChildren: (ids: string[]) => {
      canceled.push(ids);
      return Promise.resolve();
    },
  } as unknown as DriverPort;
  return { driver, canceled };
}

async function runSub(driver: DriverPort, abort?: AbortSignal): Promise<unknown> {
  const task = driver.workflow.config.tasks[0] as TaskOf<"basic">;
  return await basicRunner.run({
    driver,
    task,
    key: "sub",
    execId: "sub-exec",
    attempt: 1,
    scope: { results: new ResultScope(), abort },
    context: {},
    record: undefined,
    input: {},
  });
}

Deno.test("basic runner: a child started as its parent's driver stopped", async (t) => {
  const project = await parentAndChild();

  await t.step("is canceled when the execution ended", async () => {
    const { driver, canceled } = stoppingDriver(project, "ended");
    await assert.rejects(runSub(driver), ExecutionEnded);
    assert.deepEqual(canceled, [["child-exec"]]);
  });

  await t.step("is left running when the driver was only given up (G3)", async () => {
    const { driver, canceled } = stoppingDriver(project, "abandoned");
    await assert.rejects(runSub(driver), ExecutionEnded);
    assert.deepEqual(canceled, []);
  });

  await t.step("is canceled when its task was given up while the start was in flight", async () => {
    // A time-out during the start request: the child it started must not outlive its task.
    const giveUp = new AbortController();
    const { driver, canceled } = stoppingDriver(project, "given_up", giveUp);
    await assert.rejects(runSub(driver, giveUp.signal), /timed out/);
    assert.deepEqual(canceled, [["child-exec"]]);
  });
});
