/**
 * A driver given up (its lease lost) writes nothing once its engine holds the execution again (outside report
 * R-E1, hypothesis 1). The driver's write that was under way when it was given up (here: a retry's timer, held
 * back by the test as a publish retried through an outage would be) resolves after this same engine took the
 * execution back; the given-up driver then went on with its next step and recorded `task.retry_scheduled`
 * under the lease revision of the new holding (Leases.assertWritable knew only the execution, not which holding
 * asked). So that write was not fenced: the replay and the state took the dead driver's retry, with `started`
 * reset, as the task's latest record while the new driver ran that very attempt (a crash then would have sent
 * attempt 2 again as attempt 2). Real engine, real nats-server; the lease is lost by an intruder's write.
 */
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import type { PubAck } from "@nats-io/jetstream";
import { startEngine } from "../../engine/mod.ts";
import { readExecutionEvents } from "../../engine/history/read_history.ts";
import { foldReplayState } from "../../engine/history/replay_state.ts";
import { loadProject } from "../../engine/domain/project/mod.ts";
import {
  BUCKETS,
  Bus,
  type BusMessage,
  connectNats,
  provisionJetStream,
  type PublishOptions,
} from "../../pkg/nats/mod.ts";
import { scriptedRuntime, writeProject } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";
import { until } from "../support/until.ts";

const PROJECT = {
  "compozy.yaml": "name: late\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: main
tools:
  - id: t
    execute: ./t.ts
tasks:
  - id: f
    use: tool(id=t)
    retry: { max_attempts: 3, backoff: { initial: 10ms, max: 10ms } }
  - id: w
    type: wait
    signal: go
`,
  "t.ts": "export default (input: unknown) => input;\n",
};

/**
 * A bus whose first publish of a retry's timer waits until the test lets it go. It ignores the driver's
 * give-up signal (PublishOptions.signal, which ends a given-up driver's writes still being tried), as the bus
 * did before it had one: what is tested is the holding's own fence, which also covers what the signal does not
 * reach (fire-and-forget events, writes a driver does not bind to it, a parked driver's).
 */
class HoldingBus extends Bus {
  readonly held = Promise.withResolvers<{ execId: string; correlationId: string }>();
  readonly release = Promise.withResolvers<void>();
  readonly stored = Promise.withResolvers<void>();
  private holding = false;
  /** The give-up signal the held publish was made with (ignored here, see above). */
  heldSignal?: AbortSignal;

  override async publish(message: BusMessage, withSignal?: PublishOptions): Promise<PubAck> {
    const options = { ...withSignal, signal: undefined };
    const resume = message as BusMessage & { reason?: string; workflow?: { execId: string } };
    const execId = resume.workflow?.execId ?? "";
    if (this.holding || message.$typeName !== "compozy.v1.TaskResume" || resume.reason !== "retry") {
      return await super.publish(message, options);
    }
    this.holding = true;
    this.heldSignal = withSignal?.signal;
    this.held.resolve({ execId, correlationId: message.metadata?.correlationId ?? execId });
    await this.release.promise;
    try {
      return await super.publish(message, options);
    } finally {
      this.stored.resolve();
    }
  }
}

Deno.test({
  name: "a given-up driver whose write came back late records nothing under its engine's next holding",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await writeProject(PROJECT);
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "engine-test", role: "engine" });
    await provisionJetStream(nc);
    const bus = new HoldingBus(nc, { source: "engine" });
    const engine = await startEngine({
      nc,
      bus,
      project: await loadProject(dir),
      instanceId: "engine-test",
      // The intruder that wrote the lease is gone: the command that comes back takes the lease at once.
      presence: {
        isGone: (id) => Promise.resolve(id !== "engine-test"),
        isPresent: () => Promise.resolve(false),
      },
    });
    let calls = 0;
    const secondCall = Promise.withResolvers<void>();
    const finishSecond = Promise.withResolvers<void>();
    const runtime = scriptedRuntime(bus, {
      t: async () => {
        if (++calls === 1) throw Object.assign(new Error("flaky"), { retryable: true });
        secondCall.resolve();
        await finishSecond.promise;
        return { calls };
      },
    });
    try {
      await engine.client.trigger("main", {});
      // The first attempt failed; its retry's timer is being stored (held here) when the lease is lost.
      const { execId, correlationId } = await bus.held.promise;
      const leases = await new Kvm(nc).open(BUCKETS.leases);
      await leases.put(execId, "intruder");
      // The driver's next renewal finds the intruder's entry and gives it up; the command comes back, this
      // engine takes the execution over (the intruder is gone) and sends attempt 2.
      await secondCall.promise;
      // Giving the driver up aborted the signal of its write still under way (a bus that heeds it ends the write).
      assert.equal(bus.heldSignal?.aborted, true);
      // The given-up driver's write resolves now, while this engine drives the execution again.
      bus.release.resolve();
      await bus.stored.promise;
      await new Promise((r) => setTimeout(r, 300));
      finishSecond.resolve();
      await until(
        async () => (await engine.client.events(execId)).some((e) => e.type === "task.waiting_started"),
        10_000,
      );

      const events = (await engine.client.events(execId)).map((e) => e.type);
      const takeOver = events.lastIndexOf("workflow.taken_over");
      assert.ok(takeOver > 0, `the execution was taken over: ${events.join(", ")}`);
      assert.deepEqual(
        events.slice(takeOver + 1).filter((type) => type === "task.retry_scheduled"),
        [],
        `the given-up driver recorded its retry under the new holding: ${events.join(", ")}`,
      );
      assert.equal(calls, 2);
      // What the dead driver's write did: a replay just before the task's success (the engine dying while
      // attempt 2 ran) saw attempt 2 not started, so it would have sent attempt 2 again as attempt 2.
      const stored = await readExecutionEvents(bus.js, correlationId, execId);
      const success = stored.findIndex((e) => e.type === "task.success");
      const f = foldReplayState(stored.slice(0, success))?.tasks.get("f");
      assert.equal(f?.attempt, 2);
      assert.equal(f?.status, "running", "attempt 2 is under way");
      assert.equal(f?.started, true, "attempt 2's start is what the replay sees");
    } finally {
      runtime.stop();
      await engine.stop();
      await nc.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
