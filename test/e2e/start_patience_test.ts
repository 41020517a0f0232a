/**
 * A process whose start meets a JetStream that does not answer (a node failing over, a loaded machine) tries
 * its start again instead of exiting. Found in the cluster test: the stream leader's node was killed while
 * engine-b was still creating its consumers, engine-b exited with "internal error: timeout", and with
 * engine-a killed by the test, every execution stayed RUNNING.
 *
 * Real parts: a nats-server with the users of `compozy dev`, an engine as a `compozy start` process that
 * reaches it through a relay (HeldLink). The relay holds what the engine sends from its first request to
 * create the state consumer on: the request times out, as during a leader election. Once the engine says it
 * starts again, the relay lets everything through, and the engine must start and run a workflow.
 */
import assert from "node:assert/strict";
import { createExecutionClient } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, credentialsEnv } from "../../pkg/nats/mod.ts";
import { writeProject } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";
import { spawnCompozy } from "./support/dev_server.ts";
import { HeldLink } from "./support/held_link.ts";

Deno.test({
  name: "start: an engine whose consumer creation times out starts again instead of exiting",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const nats = await startTestNats();
    const dir = await writeProject({
      "compozy.yaml": "name: start-patience\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml": "id: nap\ntasks:\n  - id: nap\n    type: sleep\n    duration: 10ms\n",
    });
    const link = HeldLink.start(nats.plainUrl);
    // The state manager's consumer is created after provisioning (which has always been patient).
    link.holdFrom(/\$JS\.API\.CONSUMER\.[A-Z.]*CREATE\.EVENTS\.compozy-state/);
    const engine = spawnCompozy(["start", "--role", "engine", "--cwd", dir, "--instance-id", "engine-a"], {
      NATS_URL: link.url,
      ...credentialsEnv(nats.auth.users.engine),
      COMPOZY_LOG_LEVEL: "info",
    });
    const nc = await nats.connectAs("api", "start-patience-test");
    try {
      await engine.waitForLine(/NATS did not answer while starting/, 120_000);
      link.release();
      await engine.waitForLine(/compozy 0\.1\.0 started|compozy .* started/, 120_000);
      const client = await createExecutionClient({
        nc,
        bus: new Bus(nc, { source: "test" }),
        project: await loadProject(dir),
      });
      const { execId } = await client.trigger("nap", {});
      const state = await client.waitForEnd(execId, 60_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
    } catch (e) {
      console.error(`--- engine (pid ${engine.pid}):\n${engine.lines.slice(-60).join("\n")}`);
      throw e;
    } finally {
      link.release();
      await nc.close();
      await engine.stop();
      link.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
