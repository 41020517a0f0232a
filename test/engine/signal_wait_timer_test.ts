/**
 * A signal delivered while its wait stores its time-out, before the wait's start is written: the wait runner
 * scheduled the time-out (an awaited publish of its TaskResume) before it counted the wait as starting, so a
 * signal that reached the running driver in between found no wait and was dropped; the wait then waited its
 * whole time-out (signal_target_test's 'same moment' case, a wait with `timeout: 10s` beside a signal task,
 * FAILED 'wait timed out' at load). Here the time-out's publish is held once stored until the signal's handler
 * has run (or 200 ms of it passed). Real nats-server, real engine.
 */
import assert from "node:assert/strict";
import { startEngine } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { projectWith } from "../support/flows.ts";
import { writeProject } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";

const WAIT = `tasks:
  - { id: w, type: wait, signal: go, timeout: 60s }
  - { id: after, type: aggregate, outputs: { got: "{{ .tasks.w.output.n }}" } }
`;

Deno.test({
  name: "a signal delivered while its wait stores its time-out is taken by the wait",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await writeProject(projectWith(WAIT));
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "engine-test", role: "engine" });
    await provisionJetStream(nc);
    const bus = new Bus(nc, { source: "engine" });
    const stored = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    const entered = Promise.withResolvers<void>();
    const handled = Promise.withResolvers<void>();
    // The write of the wait's time-out: stored, its acknowledgement held back from the driver.
    const publish = bus.publish.bind(bus);
    bus.publish = async (message, options) => {
      const ack = await publish(message, options);
      if (message.$typeName === "compozy.v1.TaskResume") {
        stored.resolve();
        await release.promise;
      }
      return ack;
    };
    // The engine's handler of the signal command: when it starts and when it is done with the command.
    const consume = bus.consume.bind(bus);
    bus.consume = (options) =>
      consume({
        ...options,
        handler: async (message, delivery) => {
          const handle = () => options.handler(message as Parameters<typeof options.handler>[0], delivery);
          if (message.$typeName !== "compozy.v1.WorkflowSignal") return await handle();
          entered.resolve();
          try {
            return await handle();
          } finally {
            handled.resolve();
          }
        },
      });
    const engine = await startEngine({
      nc,
      bus,
      project: await loadProject(dir),
      instanceId: "engine-test",
    });
    try {
      const { client } = engine;
      const { execId } = await client.trigger("main", {});
      await stored.promise;
      await client.signal(execId, "go", { n: 7 });
      await entered.promise;
      // Dropped, the command is done at once; taken, it waits for the wait to register, so the write is let go.
      await Promise.race([handled.promise, new Promise((r) => setTimeout(r, 200))]);
      release.resolve();
      await handled.promise;
      // The signal's command is done once the wait's end it caused is stored.
      const history = (await client.events(execId)).map((e) => e.type);
      assert.ok(history.includes("task.waiting_ended"), `the signal was dropped: ${history.join(", ")}`);
      const state = await client.waitForEnd(execId, 20_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(state.output, { got: 7 });
    } finally {
      release.resolve();
      await engine.stop();
      await nc.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
