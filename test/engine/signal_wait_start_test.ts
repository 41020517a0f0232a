/**
 * A signal that reaches the engine while its wait's writes are not yet acknowledged is taken by the wait. Two
 * writes of a wait are held here, each once stored, until the signal's handler has run (or 200 ms of it
 * passed): the acknowledgement reaches the engine late, as at load or when the publish is tried again. Real
 * nats-server, real engine.
 *
 * Its start: a signal sent once its wait's `task.waiting_started` is stored, and delivered to the engine before that
 * write's acknowledgement (fresh-clone CI of 20fb081, crash_signal_test B2 at load: the signal was sent, the
 * next task never ran). The driver had no wait registered yet, so the signal was dropped as taken by no wait
 * and acknowledged; the wait then registered and the execution waited for good.
 *
 * Its time-out: the wait runner scheduled the time-out (an awaited publish of its TaskResume) before it counted
 * the wait as starting, so a signal that reached the running driver in between found no wait and was dropped;
 * the wait then waited its whole time-out (signal_target_test's 'same moment' case, a wait with `timeout: 10s`
 * beside a signal task, FAILED 'wait timed out' at load).
 */
import assert from "node:assert/strict";
import { startEngine } from "../../engine/mod.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { Bus, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import { projectWith } from "../support/flows.ts";
import { writeProject } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";

/** A wait for `go` (with `timeout` when given), then a task that outputs the signal's `n`. */
const waitFor = (timeout = "") =>
  `tasks:
  - { id: w, type: wait, signal: go${timeout ? `, timeout: ${timeout}` : ""} }
  - { id: after, type: aggregate, outputs: { got: "{{ .tasks.w.output.n }}" } }
`;

Deno.test({
  name:
    "a signal delivered before its wait's recorded start is acknowledged to the engine is taken by the wait",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => signalWhileWriteHeld(waitFor(), "compozy.v1.TaskExecutionWaitingStarted"),
});

Deno.test({
  name: "a signal delivered while its wait stores its time-out is taken by the wait",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => signalWhileWriteHeld(waitFor("60s"), "compozy.v1.TaskResume"),
});

/** Runs `wait`, holds the engine's first stored write of type `held`, and signals the execution meanwhile. */
async function signalWhileWriteHeld(wait: string, held: string): Promise<void> {
  const dir = await writeProject(projectWith(wait));
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "engine-test", role: "engine" });
  await provisionJetStream(nc);
  const bus = new Bus(nc, { source: "engine" });
  const stored = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const entered = Promise.withResolvers<void>();
  const handled = Promise.withResolvers<void>();
  // The held write of the wait: stored, its acknowledgement held back from the driver.
  const publish = bus.publish.bind(bus);
  bus.publish = async (message, options) => {
    const ack = await publish(message, options);
    if (message.$typeName === held) {
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
}
