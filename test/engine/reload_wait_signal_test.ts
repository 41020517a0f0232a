/**
 * A wait that started before a reload (`compozy dev --watch`, a deployment) waits for the signal it recorded,
 * not for the one the new definition names. Before, an edit of the wait's `signal:` left every execution
 * already waiting unwakeable: the API counted it as waiting for the old signal (202 `waiting: 1`) while its
 * replayed wait listened for the new one and dropped it, and the new signal found no recorded wait listening.
 * docs/getting-started.md: "tasks started after the reload use the new definitions". A real engine on a real
 * nats-server, stopped and started again on the edited project as a reload does (cli/stack.ts `swap`).
 */
import assert from "node:assert/strict";
import { reloadWhileWaiting } from "../support/reload.ts";

const workflow = (signal: string) =>
  `id: main\ntasks:\n  - { id: w, type: wait, signal: ${signal}, timeout: 10m }\n` +
  `outputs:\n  got: "{{ .tasks.w.output }}"\n`;

Deno.test("a wait started before a reload that renamed its signal still takes the signal it recorded", async () => {
  await reloadWhileWaiting("reload-wait", workflow("go"), workflow("go-renamed"), async (engine, execId) => {
    await engine.client.signal(execId, "go", { n: 1 });
    const ended = await engine.client.waitForEnd(execId, 15_000);
    assert.deepEqual([ended.status, ended.output], ["SUCCESS", { got: { n: 1 } }]);
  });
});
