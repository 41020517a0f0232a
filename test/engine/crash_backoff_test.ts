/**
 * A crash during a retry back-off does not cut it short: the engine that takes the execution over waits the
 * rest of the recorded delay before the next attempt (outside review F7, /work/wt/engbreak/FINDINGS.md).
 * Real engine processes (SIGKILLed), real nats-server. The assertion is on recorded times, with the whole
 * delay as margin: attempt 2 must not start before the back-off recorded in `task.retry_scheduled` is over,
 * counted from the event stored just before it.
 */
import assert from "node:assert/strict";
import { startCrashStack } from "../support/engine_process.ts";

Deno.test({
  name: "F7: a retry whose engine died during the back-off runs only once the back-off is over",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const calls: number[] = [];
    const stack = await startCrashStack({
      "compozy.yaml": "name: crash\nworkflows:\n  - source: ./wf.yaml\n",
      "wf.yaml":
        "id: main\ntools:\n  - id: work\n    execute: ./t.ts\ntasks:\n  - id: a\n    use: tool(id=work)\n" +
        "    retry: { max_attempts: 2, backoff: { initial: 16s, max: 16s, factor: 1 } }\n",
      "t.ts": "export default (input: unknown) => input;\n",
    }, {
      work: (_input, call) => {
        calls.push(call.attempt);
        if (call.attempt === 1) throw Object.assign(new Error("first attempt fails"), { retryable: true });
        return { attempt: call.attempt };
      },
    }, { instanceId: "e" });
    const { client } = stack;
    try {
      const { execId } = await client.trigger("main", {});
      const deadline = Date.now() + 30_000;
      let scheduled;
      while (!(scheduled = (await client.events(execId)).find((e) => e.type === "task.retry_scheduled"))) {
        assert.ok(Date.now() < deadline, "no retry scheduled");
        await new Promise((r) => setTimeout(r, 50));
      }
      await stack.killEngine();
      stack.restartEngine({ instanceId: "e2" });
      const state = await client.waitForEnd(execId, 60_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(calls, [1, 2]);
      const events = await client.events(execId);
      const started2 = events.find((e) =>
        e.type === "task.started" && (e.data as { attempt?: number }).attempt === 2
      );
      assert.ok(started2, events.map((e) => e.type).join(", "));
      const delayMs = Number((scheduled.data as { delayMs: string | number }).delayMs);
      // The engine takes its due time from its clock before it records `task.retry_scheduled` (the timer is
      // stored first), so a few ms before that event's stream time: the event stored before it bounds the
      // back-off's start from below (a bound from the event itself failed by 8 ms at load 22).
      const index = events.findIndex((e) => e.seq === scheduled.seq);
      const due = Date.parse(events[index - 1].time) + delayMs;
      assert.ok(
        Date.parse(started2.time) >= due,
        `attempt 2 started at ${started2.time}, before the back-off ended at ${new Date(due).toISOString()}`,
      );
    } finally {
      await stack.close();
    }
  },
});
