/**
 * `compozy dev` killed with SIGKILL (its whole process group: NATS, runtime and all) and started again on
 * the same project: the store is resumed, nothing of the killed run blocks the restart, and a waiting
 * execution accepted before the crash still finishes.
 */
import assert from "node:assert/strict";
import { copyProject, FIXTURE_PROJECT, startDev } from "./support/dev_server.ts";

Deno.test({
  name: "compozy dev resumes after a SIGKILL of its process group",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await copyProject(FIXTURE_PROJECT);
    try {
      const first = await startDev({ dir });
      const res = await first.fetch("/api/workflows/approval/executions", {
        method: "POST",
        body: JSON.stringify({ input: { item: "chair" } }),
        headers: { "content-type": "application/json" },
      });
      const { exec_id: execId } = await res.json();
      await first.waitForLine(/⏸ waiting for signal 'approve'/);
      await first.killGroup();
      const deadline = Date.now() + 5_000;
      while ((await liveMembers(first.pid)).length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(await liveMembers(first.pid), [], "no process of the killed group is left");

      const second = await startDev({ dir });
      try {
        const before = await (await second.fetch(`/api/executions/${execId}`)).json();
        assert.equal(before.status, "WAITING");
        const signal = await second.fetch(`/api/executions/${execId}/signals/approve`, {
          method: "POST",
          body: JSON.stringify({ ok: true, by: "ops" }),
          headers: { "content-type": "application/json" },
        });
        assert.equal(signal.status, 202);
        const end = await second.run("hello", { name: "after" });
        assert.equal(end.status, "SUCCESS");
        const deadline = Date.now() + 20_000;
        let state;
        do {
          state = await (await second.fetch(`/api/executions/${execId}`)).json();
          if (state.status === "SUCCESS") break;
          await new Promise((r) => setTimeout(r, 100));
        } while (Date.now() < deadline);
        assert.deepEqual(state.output, { result: "CHAIR APPROVED BY OPS" });
      } finally {
        await second.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Pids of the processes of group `pgid` that still run (zombies waiting to be reaped do not count). */
async function liveMembers(pgid: number): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      // Fields after the command name (which may contain spaces): state, ppid, pgrp, …
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z") pids.push(Number(entry.name));
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}
