/**
 * Schedules against a real NATS KV bucket: one execution per tick whatever the number of processes, a
 * claimed-but-unsent tick re-sent, the missed-ticks policy, refusals not retried forever.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import type { TriggerOptions, TriggerResult } from "../client.ts";
import { loadProject } from "../domain/project/mod.ts";
import { InputValidationError } from "../errors.ts";
import { connectNats } from "../../pkg/nats/connection.ts";
import { BUCKETS, provisionJetStream } from "../../pkg/nats/provision.ts";
import { startTestNats } from "../../test/support/nats.ts";
import { ScheduleRunner } from "./schedule_runner.ts";
import { kvScheduleStore, type ScheduleRecord } from "./schedule_store.ts";

class RecordingClient {
  readonly calls: Array<{ workflowId: string; input: unknown; options: TriggerOptions }> = [];
  refuse = false;
  trigger(workflowId: string, input: unknown, options: TriggerOptions = {}): Promise<TriggerResult> {
    this.calls.push({ workflowId, input, options });
    if (this.refuse) throw new InputValidationError(workflowId, [{ path: "/city", message: "bad" }]);
    return Promise.resolve({ execId: `e${this.calls.length}`, duplicate: false });
  }
}

async function projectWithCron(cron: string) {
  const dir = await Deno.makeTempDir({ prefix: "compozy-sched-" });
  await Deno.mkdir(join(dir, "tools"));
  await Deno.writeTextFile(join(dir, "compozy.yaml"), "name: sched\nworkflows:\n  - source: ./wf.yaml\n");
  await Deno.writeTextFile(join(dir, "tools/t.ts"), "export default () => ({});\n");
  await Deno.writeTextFile(
    join(dir, "wf.yaml"),
    `id: daily\ntriggers:\n  - type: schedule\n    config: { cron: "${cron}", input: { city: "{{ .env.CITY }}" } }\n` +
      "env: { CITY: Lisbon }\ntools:\n  - { id: t, execute: ./tools/t.ts }\ntasks:\n  - { id: a, use: tool(id=t) }\n",
  );
  return await loadProject(dir, { processEnv: {} });
}

Deno.test("schedule runner", async (t) => {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url);
  await provisionJetStream(nc);
  const kv = await new Kvm(nc).open(BUCKETS.schedules);
  const store = kvScheduleStore(kv);
  const daily = await projectWithCron("0 7 * * *");
  const runner = (client: RecordingClient, now: string, instanceId = "a") =>
    new ScheduleRunner({
      project: daily,
      client,
      store,
      instanceId,
      processEnv: {},
      now: () => new Date(now),
    });
  const reset = async () => await kv.delete("daily.0");

  try {
    await t.step("two processes firing the same tick start one execution", async () => {
      await reset();
      const client = new RecordingClient();
      const [a, b] = [
        runner(client, "2025-01-01T07:00:00Z", "a"),
        runner(client, "2025-01-01T07:00:00Z", "b"),
      ];
      const tick = new Date("2025-01-01T07:00:00Z");
      const outcomes = await Promise.all([a.fire(a.schedules[0], tick), b.fire(b.schedules[0], tick)]);
      assert.deepEqual(outcomes.sort(), ["claimed_elsewhere", "fired"]);
      assert.equal(client.calls.length, 1);
      assert.equal(client.calls[0].options.idempotencyKey, "schedule:daily:2025-01-01T07:00:00.000Z");
      assert.equal(client.calls[0].options.source, "schedule");
      assert.deepEqual(client.calls[0].input, { city: "Lisbon" });
      assert.equal(await a.fire(a.schedules[0], tick), "already_fired");
    });

    await t.step("a new schedule owes nothing before start-up", async () => {
      await reset();
      const client = new RecordingClient();
      assert.equal(
        await runner(client, "2025-01-05T12:00:00Z").catchUp(runner(client, "x").schedules[0]),
        "nothing_due",
      );
      assert.equal(client.calls.length, 0);
      assert.equal((await store.get("daily.0"))!.record.state, "baseline");
    });

    await t.step("missed ticks: the latest runs once at start-up, older ones are skipped", async () => {
      await reset();
      const sent: ScheduleRecord = {
        tick: "2025-01-01T07:00:00.000Z",
        state: "sent",
        cron: "0 7 * * *",
        by: "old",
      };
      await store.compareAndSet("daily.0", sent, undefined);
      const client = new RecordingClient();
      const late = runner(client, "2025-01-05T12:00:00Z");
      assert.equal(await late.catchUp(late.schedules[0]), "fired");
      assert.deepEqual(client.calls.map((c) => c.options.idempotencyKey), [
        "schedule:daily:2025-01-05T07:00:00.000Z",
      ]);
      assert.equal(await late.catchUp(late.schedules[0]), "nothing_due", "a restart does not fire it again");
      assert.equal(client.calls.length, 1);
    });

    await t.step("a tick claimed by a process that died before sending is sent again, same key", async () => {
      await reset();
      const claimed: ScheduleRecord = {
        tick: "2025-01-05T07:00:00.000Z",
        state: "claimed",
        cron: "0 7 * * *",
        by: "dead",
      };
      await store.compareAndSet("daily.0", claimed, undefined);
      const client = new RecordingClient();
      const r = runner(client, "2025-01-05T07:00:03Z");
      assert.equal(await r.catchUp(r.schedules[0]), "resent");
      assert.equal(client.calls[0].options.idempotencyKey, "schedule:daily:2025-01-05T07:00:00.000Z");
      assert.equal((await store.get("daily.0"))!.record.state, "sent");
    });

    await t.step("a refused trigger is recorded and not retried", async () => {
      await reset();
      const client = new RecordingClient();
      client.refuse = true;
      const r = runner(client, "2025-01-06T07:00:00Z");
      const tick = new Date("2025-01-06T07:00:00Z");
      assert.equal(await r.fire(r.schedules[0], tick), "refused");
      assert.match((await store.get("daily.0"))!.record.error!, /invalid/);
      assert.equal(await r.fire(r.schedules[0], tick), "already_fired");
      assert.equal(client.calls.length, 1);
    });

    await t.step("on a real clock, three processes fire each second exactly once", async () => {
      const everySecond = await projectWithCron("* * * * * *");
      await kv.delete("daily.0");
      const client = new RecordingClient();
      const runners = ["p1", "p2", "p3"].map((id) =>
        new ScheduleRunner({ project: everySecond, client, store, instanceId: id, processEnv: {} })
      );
      await Promise.all(runners.map((r) => r.start()));
      await new Promise((r) => setTimeout(r, 3_200));
      await Promise.all(runners.map((r) => r.stop()));
      const keys = client.calls.map((c) => c.options.idempotencyKey!);
      assert.ok(keys.length >= 3, `fired ${keys.length} ticks`);
      assert.equal(new Set(keys).size, keys.length, `no tick fired twice: ${keys.join(", ")}`);
    });
    await t.step(
      "a tick that meets an outage is tried again before the next tick (outside review B7)",
      async () => {
        const everyFive = await projectWithCron("*/5 * * * * *");
        await kv.delete("daily.0");
        const client = new RecordingClient();
        const trigger = client.trigger.bind(client);
        client.trigger = (workflowId, input, options = {}) =>
          // The first tick's trigger meets NATS down (what the outage looked like: a time-out).
          client.calls.length === 0
            ? (client.calls.push({ workflowId, input, options }), Promise.reject(new Error("TIMEOUT")))
            : trigger(workflowId, input, options);
        const r = new ScheduleRunner({ project: everyFive, client, store, instanceId: "p1", processEnv: {} });
        await r.start();
        const deadline = Date.now() + 15_000;
        while (client.calls.length < 2 && Date.now() < deadline) await new Promise((w) => setTimeout(w, 100));
        await r.stop();
        const keys = client.calls.map((c) => c.options.idempotencyKey!);
        // On main the failed tick was dropped and the second call was the next tick's.
        assert.equal(keys[1], keys[0], `the failed tick was sent again: ${keys.join(", ")}`);
      },
    );
  } finally {
    await nc.close();
    await nats.stop();
  }
});
