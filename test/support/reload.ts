/**
 * A reload under a waiting execution, as `compozy dev --watch` or a deployment makes it (cli/stack.ts
 * `swap`): a real engine on a real nats-server is stopped and a new one started on the edited project.
 */
import { type EngineHandle, startEngine } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { startEngineHarness } from "./engine.ts";
import { until } from "./until.ts";

/**
 * Starts an engine on a project whose one workflow file is `before` (workflow `main`), starts `main` and waits
 * for its first `task.waiting_started`; then writes `after` as the file, starts a new engine on the reloaded
 * project and gives it to `then` with the execution's id.
 */
export async function reloadWhileWaiting(
  name: string,
  before: string,
  after: string,
  then: (engine: EngineHandle, execId: string) => Promise<void>,
): Promise<void> {
  const h = await startEngineHarness({
    "compozy.yaml": `name: ${name}\nworkflows:\n  - source: ./wf.yaml\n`,
    "wf.yaml": before,
  });
  let engine = h.engine;
  try {
    const { execId } = await engine.client.trigger("main", {});
    await until(async () =>
      (await engine.client.events(execId)).some((e) => e.type === "task.waiting_started")
    );
    await Deno.writeTextFile(`${h.dir}/wf.yaml`, after);
    await engine.stop();
    engine = await startEngine({
      nc: h.nc,
      bus: h.bus,
      project: await loadProject(h.dir),
      instanceId: "engine-test",
    });
    await then(engine, execId);
  } finally {
    if (engine !== h.engine) await engine.stop();
    await h.close();
  }
}
