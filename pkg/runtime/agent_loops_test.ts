import assert from "node:assert/strict";
import { AgentLoops } from "./agent_loops.ts";

Deno.test("AgentLoops", async (t) => {
  await t.step("a second request for a running loop joins it", async () => {
    const loops = new AgentLoops<string>();
    let started = 0;
    const gate = Promise.withResolvers<string>();
    const start = () => {
      started++;
      return gate.promise;
    };
    const first = loops.run("task-1", start);
    const second = loops.run("task-1", start);
    gate.resolve("done");
    assert.deepEqual(await Promise.all([first, second]), ["done", "done"]);
    assert.equal(started, 1);
    assert.equal(loops.size, 0);
  });

  await t.step("a canceled loop is not joined; another task's loop is its own", async () => {
    const loops = new AgentLoops<string>();
    const gate = Promise.withResolvers<string>();
    const old = loops.run("task-1", () => gate.promise);
    loops.canceled("task-1");
    assert.equal(await loops.run("task-1", () => Promise.resolve("fresh")), "fresh");
    assert.equal(await loops.run("task-2", () => Promise.resolve("other")), "other");
    gate.resolve("canceled");
    assert.equal(await old, "canceled");
    assert.equal(loops.size, 0);
  });
});
