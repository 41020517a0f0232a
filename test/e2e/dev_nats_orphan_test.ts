/**
 * One managed nats-server per project store, never outliving `compozy dev` (outside review B6): a `kill -9`
 * of dev alone (not its process group) used to leave its nats-server running, and the next dev started a
 * second server on the same JetStream directory.
 *
 * - dev killed alone: its watchdog stops the server.
 * - dev and its watchdog killed: the next dev stops the server left behind (after checking its command line
 *   names this store), says so, and runs one server; the executions stored before are still there.
 * - a second dev on a project whose dev still runs is refused, naming the store and that dev's pid, and stops
 *   nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FIXTURE_PROJECT, spawnCompozy, startDev } from "./support/dev_server.ts";
import { childrenNamed, gone, running } from "./support/processes.ts";

/** The nats-server processes whose command line names `dir`'s store. */
async function serversOn(dir: string): Promise<number[]> {
  const store = join(dir, ".compozy/nats/jetstream");
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name) || !await running(Number(entry.name))) continue;
    const args = (await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "")).split("\0");
    if (args[0]?.endsWith("nats-server") && args.includes(store)) pids.push(Number(entry.name));
  }
  return pids;
}

Deno.test({
  name: "dev: its managed nats-server dies with it, and one server at most runs on a project's store",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    let dev = await startDev({ fixture: FIXTURE_PROJECT });
    const dir = dev.dir;
    const leftovers: number[] = [];
    try {
      await t.step("kill -9 of dev alone: its nats-server goes too", async () => {
        const [nats] = await childrenNamed(dev.pid, "nats-server");
        assert.ok(nats, "dev runs a managed nats-server as its child");
        leftovers.push(nats);
        Deno.kill(dev.pid, "SIGKILL");
        await dev.status;
        assert.ok(await gone(nats), `nats-server ${nats} outlived dev`);
      });

      await t.step("a server left by a killed dev is stopped by the next dev, which runs one", async () => {
        dev = await startDev({ dir });
        const kept = (await dev.run("hello", { name: "Kept" })).exec_id;
        const [nats] = await childrenNamed(dev.pid, "nats-server");
        leftovers.push(nats);
        // What a kill -9 of everything but the server does (e.g. the OOM killer taking dev and its watchdog).
        for (const sh of await childrenNamed(dev.pid, "sh")) Deno.kill(sh, "SIGKILL");
        Deno.kill(dev.pid, "SIGKILL");
        await dev.status;
        assert.ok(await running(nats), "the server outlives dev once its watchdog is gone too");

        dev = await startDev({ dir });
        assert.ok(
          dev.lines.some((l) => l.includes(`stopped nats-server ${nats}, left running on this store`)),
          dev.lines.join("\n"),
        );
        assert.ok(await gone(nats), `the orphan ${nats} still runs`);
        const servers = await serversOn(dir);
        leftovers.push(...servers);
        assert.deepEqual(servers, await childrenNamed(dev.pid, "nats-server"));
        assert.equal(servers.length, 1);
        const state = await (await dev.fetch(`/api/executions/${kept}`)).json();
        assert.equal(state.status, "SUCCESS");
      });

      await t.step("a second dev on the same project is refused and stops nothing", async () => {
        const servers = await serversOn(dir);
        const second = spawnCompozy(["dev", "--cwd", dir, "--port", "0"]);
        const ready = second.waitForLine(/^ready in \d+ ms/, 60_000).then(() => true, () => false);
        if (await ready) {
          await second.stop();
          assert.fail(`a second dev started on the store:\n${second.lines.join("\n")}`);
        }
        const status = await second.status;
        const text = second.lines.join("\n");
        assert.equal(status.code, 1, text);
        assert.match(text, /the store .*\.compozy\/nats is in use by another running Compozy process/);
        assert.match(text, new RegExp(`\\(pid ${dev.pid}\\)`));
        assert.deepEqual(await serversOn(dir), servers);
        assert.equal((await dev.fetch("/api/health")).status, 200);
      });
    } finally {
      await dev.stop();
      // Failed: a server of this store would outlive the suite (only those whose command line names it).
      const ours = await serversOn(dir);
      for (const pid of leftovers) if (ours.includes(pid)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
