/**
 * An execution whose open task (here a wait) was renamed or removed by a reload (`compozy dev --watch`, a
 * deployment) cannot go on faithfully: it fails at its next activation, naming the task, as an execution whose
 * workflow is gone does. Before, the replay started the renamed task anew beside the recorded one, which stayed
 * WAITING for good: two waits, the old signal dropped, the execution stuck. A real engine on a real
 * nats-server, stopped and started again on the edited project as a reload does (cli/stack.ts `swap`).
 */
import assert from "node:assert/strict";
import { startEngine } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { startEngineHarness } from "../support/engine.ts";
import { until } from "../support/until.ts";

const workflow = (waitId: string) =>
  `id: main\ntasks:\n  - { id: first, type: sleep, duration: 1ms }\n` +
  `  - id: box\n    type: composite\n    tasks:\n      - { id: ${waitId}, type: wait, signal: go, timeout: 10m }\n`;

Deno.test("an execution whose waiting task a reload renamed fails at its next activation, naming the task", async () => {
  const h = await startEngineHarness({
    "compozy.yaml": "name: reload-renamed\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml": workflow("w"),
  });
  let engine = h.engine;
  try {
    const { execId } = await engine.client.trigger("main", {});
    await until(async () =>
      (await engine.client.events(execId)).some((e) => e.type === "task.waiting_started")
    );

    await Deno.writeTextFile(`${h.dir}/wf.yaml`, workflow("w-renamed"));
    await engine.stop();
    engine = await startEngine({
      nc: h.nc,
      bus: h.bus,
      project: await loadProject(h.dir),
      instanceId: "engine-test",
    });

    await engine.client.signal(execId, "go", {});
    const ended = await engine.client.waitForEnd(execId, 15_000);
    assert.equal(ended.status, "FAILED");
    assert.equal(ended.error?.code, "definition_changed");
    assert.match(ended.error?.message ?? "", /task 'box\/w' .* not in workflow 'main'/);
  } finally {
    if (engine !== h.engine) await engine.stop();
    await h.close();
  }
});

Deno.test("a reload that keeps the open task's id lets the execution go on", async () => {
  const h = await startEngineHarness({
    "compozy.yaml": "name: reload-kept\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml": workflow("w"),
  });
  let engine = h.engine;
  try {
    const { execId } = await engine.client.trigger("main", {});
    await until(async () =>
      (await engine.client.events(execId)).some((e) => e.type === "task.waiting_started")
    );
    await engine.stop();
    engine = await startEngine({
      nc: h.nc,
      bus: h.bus,
      project: await loadProject(h.dir),
      instanceId: "engine-test",
    });
    await engine.client.signal(execId, "go", { n: 1 });
    const ended = await engine.client.waitForEnd(execId, 15_000);
    assert.deepEqual([ended.status, ended.output], ["SUCCESS", { n: 1 }]);
  } finally {
    if (engine !== h.engine) await engine.stop();
    await h.close();
  }
});
