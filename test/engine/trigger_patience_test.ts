/**
 * A trigger outlives an engine's restart: while no engine is connected ("no responders"), the client sends it
 * again for TRIGGER_PATIENCE_MS (60 s), then fails with NoEngineAnsweredError (a NATS outage: 503 for the
 * API). Before, it gave up after 30 s: in the cluster test a trigger once failed after 25 "no responders"
 * following the kills of an engine and of a node. Real nats-server, real engine, the API's user.
 */
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { openStateStore, startEngine } from "../../engine/mod.ts";
import { NatsExecutionClient } from "../../engine/execution_client.ts";
import { NoEngineAnsweredError } from "../../engine/errors.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream, RequestError } from "../../pkg/nats/mod.ts";
import { writeProject } from "../support/engine.ts";
import { projectWith } from "../support/flows.ts";
import { startTestNats } from "../support/nats.ts";

const WORKFLOW = `tasks:
  - { id: only, type: aggregate, outputs: { done: true } }
`;

Deno.test("a trigger sent while no engine is connected is taken by an engine that starts 35 s later", async () => {
  const dir = await writeProject(projectWith(WORKFLOW, ["echo"]));
  const project = await loadProject(dir);
  const nats = await startTestNats();
  const engineNc = await connectNats(nats.url, { name: "engine", role: "engine" });
  const apiNc = await nats.connectAs("api");
  let engine: Awaited<ReturnType<typeof startEngine>> | undefined;
  try {
    await provisionJetStream(engineNc);
    const api = new NatsExecutionClient(
      new Bus(apiNc, { source: "api" }),
      jetstream(apiNc),
      await openStateStore(apiNc),
      project,
    );
    const triggered = api.trigger("main", {});
    // Past the old 30 s bound, as an engine restarting while JetStream fails over may take.
    await new Promise((r) => setTimeout(r, 35_000));
    engine = await startEngine({
      nc: engineNc,
      bus: new Bus(engineNc, { source: "engine" }),
      project,
      instanceId: "engine-late",
    });
    const { execId } = await triggered;
    const state = await api.waitForEnd(execId, 60_000);
    assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
  } finally {
    await engine?.stop();
    await engineNc.close();
    await apiNc.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a trigger no engine answers within its patience fails saying so, and nothing was started", async () => {
  const dir = await writeProject(projectWith(WORKFLOW, ["echo"]));
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "engine", role: "engine" });
  const apiNc = await nats.connectAs("api");
  try {
    await provisionJetStream(nc);
    const api = new NatsExecutionClient(
      new Bus(apiNc, { source: "api" }),
      jetstream(apiNc),
      await openStateStore(apiNc),
      await loadProject(dir),
      2_000,
    );
    const error = await api.trigger("main", {}).then(() => undefined, (e) => e);
    assert.ok(error instanceof NoEngineAnsweredError, String(error));
    // A NATS outage for the API (server/api_error.ts: a RequestError with a cause is a 503).
    assert.ok(error instanceof RequestError && error.cause !== undefined);
    assert.match(
      error.message,
      /No engine answered the trigger of workflow 'main' for 2 s \(\d+ attempts, each met no responders\)/,
    );
    assert.equal((await api.list()).items.length, 0);
  } finally {
    await nc.close();
    await apiNc.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
