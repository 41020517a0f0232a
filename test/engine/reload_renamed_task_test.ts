/**
 * An execution whose open task (here a wait) was renamed or removed by a reload (`compozy dev --watch`, a
 * deployment) cannot go on faithfully: it fails at its next activation, naming the task, as an execution whose
 * workflow is gone does. Before, the replay started the renamed task anew beside the recorded one, which stayed
 * WAITING for good: two waits, the old signal dropped, the execution stuck. A real engine on a real
 * nats-server, stopped and started again on the edited project as a reload does (cli/stack.ts `swap`).
 */
import assert from "node:assert/strict";
import { reloadWhileWaiting } from "../support/reload.ts";

const workflow = (waitId: string) =>
  `id: main\ntasks:\n  - { id: first, type: sleep, duration: 1ms }\n` +
  `  - id: box\n    type: composite\n    tasks:\n      - { id: ${waitId}, type: wait, signal: go, timeout: 10m }\n`;

Deno.test("an execution whose waiting task a reload renamed fails at its next activation, naming the task", async () => {
  await reloadWhileWaiting("reload-renamed", workflow("w"), workflow("w-renamed"), async (engine, execId) => {
    await engine.client.signal(execId, "go", {});
    const ended = await engine.client.waitForEnd(execId, 15_000);
    assert.equal(ended.status, "FAILED");
    assert.equal(ended.error?.code, "definition_changed");
    assert.match(ended.error?.message ?? "", /task 'box\/w' .* not in workflow 'main'/);
  });
});

Deno.test("a reload that keeps the open task's id lets the execution go on", async () => {
  await reloadWhileWaiting("reload-kept", workflow("w"), workflow("w"), async (engine, execId) => {
    await engine.client.signal(execId, "go", { n: 1 });
    const ended = await engine.client.waitForEnd(execId, 15_000);
    assert.deepEqual([ended.status, ended.output], ["SUCCESS", { n: 1 }]);
  });
});
