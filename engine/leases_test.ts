/**
 * Leases on a real nats-server: a refresh that meets a changed or vanished entry takes back what is still
 * ours and gives up only what another engine holds; a holder whose lease could pass to another engine stops
 * recording before it can (fencing), and a refused write stores nothing.
 */
import assert from "node:assert/strict";
import { jetstream, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { BUCKETS, Bus, connectNats, provisionJetStream, STREAMS } from "../pkg/nats/mod.ts";
import { EventRecorder } from "./domain/workflow/event_recorder.ts";
import type { DriverRef } from "./domain/workflow/driver_services.ts";
import { TaskLedger } from "./domain/workflow/task_ledger.ts";
import { HoldingEndedError, LeaseExpiredError, Leases } from "./leases.ts";
import { startTestNats } from "../test/support/nats.ts";
import { EnginePresence } from "./engine_presence.ts";

const TTL_MS = 1_500;

async function withLeases(
  fn: (ctx: {
    a: Leases;
    b: Leases;
    kv: Awaited<ReturnType<Kvm["open"]>>;
    bus: Bus;
    jsm: JetStreamManager;
    eventCount: () => Promise<number>;
    /** Another engine's leases, that sees every holder as gone (its presence unanswered). */
    taker: (id: string) => Leases;
  }) => Promise<void>,
): Promise<void> {
  const nats = await startTestNats();
  const nc = await connectNats(nats.url, { name: "leases-test" });
  try {
    await provisionJetStream(nc, { ttlMs: { [BUCKETS.leases]: TTL_MS } });
    const kv = await new Kvm(nc).open(BUCKETS.leases);
    const ttl = (await kv.status()).ttl;
    assert.equal(ttl, TTL_MS);
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const gone = { isGone: () => Promise.resolve(true), isPresent: () => Promise.resolve(false) };
    await fn({
      a: new Leases(kv, "engine-a", ttl, undefined, js),
      b: new Leases(kv, "engine-b", ttl, undefined, js),
      kv,
      bus: new Bus(nc, { source: "engine" }),
      jsm,
      taker: (id) => new Leases(kv, id, ttl, gone, js),
      eventCount: async () => (await jsm.streams.info(STREAMS.events)).state.messages,
    });
  } finally {
    await nc.close();
    await nats.stop();
  }
}

Deno.test("leases: a refresh after the entry vanished is lost: another engine may have taken and released it", async () => {
  await withLeases(async ({ a, jsm, taker }) => {
    assert.ok(await a.acquire("exec-1"));
    const held = a.assertWritable("exec-1", "s").revision;
    // Engine B, seeing A gone (its presence unanswered: a starved loop, a cut route), takes the lease (and
    // appends its take-over at that revision), finishes quickly and releases it.
    const b = taker("engine-b");
    assert.equal(await b.claim("exec-1"), "acquired");
    assert.ok(b.assertWritable("exec-1", "s").revision > held);
    await b.release("exec-1");
    // Taken back (before), A's lease kept revision `held`: its events, stored after B's take-over, were all
    // fenced out while its driver ran on.
    assert.equal(await a.refresh("exec-1"), "lost");
    assert.equal(a.writableUntil("exec-1"), 0);
    // Likewise a key with no message at all (a taker's entry expired too).
    assert.ok(await a.acquire("exec-2"));
    await jsm.streams.purge(`KV_${BUCKETS.leases}`, { filter: `$KV.${BUCKETS.leases}.exec-2` });
    assert.equal(await a.refresh("exec-2"), "lost");
  });
});

Deno.test("leases: a lease is taken anew only where no engine held it within its TTL", async () => {
  await withLeases(async ({ a, kv, taker }) => {
    assert.ok(await a.acquire("exec-1"));
    assert.equal(a.takenAnew("exec-1"), true);
    assert.equal(await a.refresh("exec-1"), "held");
    assert.equal(a.takenAnew("exec-1"), true, "a renewal keeps it");
    // Another engine drove it and gave it back: its release marker is left for the TTL.
    const b = taker("engine-b");
    assert.ok(await b.acquire("exec-2"));
    await b.release("exec-2");
    assert.ok(await a.acquire("exec-2"));
    assert.equal(a.takenAnew("exec-2"), false);
    // Or parked it.
    assert.ok(await b.acquire("exec-3"));
    await b.release("exec-3", { parked: true });
    assert.ok(await a.acquire("exec-3"));
    assert.equal(a.takenAnew("exec-3"), false);
    // Without a JetStream client to check the key, no lease is taken anew.
    const c = new Leases(kv, "engine-c", 1_500);
    assert.ok(await c.acquire("exec-4"));
    assert.equal(c.takenAnew("exec-4"), false);
  });
});

Deno.test("leases: a refresh after our own update landed unseen (its reply was lost) keeps the lease", async () => {
  await withLeases(async ({ a, kv }) => {
    assert.ok(await a.acquire("exec-1"));
    await kv.put("exec-1", new TextEncoder().encode("engine-a"));
    assert.equal(await a.refresh("exec-1"), "held");
    assert.ok(a.writableUntil("exec-1") > Date.now());
  });
});

Deno.test("leases: only another holder's entry means lost, and the loser may not write", async () => {
  await withLeases(async ({ a, kv }) => {
    assert.ok(await a.acquire("exec-1"));
    await kv.put("exec-1", new TextEncoder().encode("engine-b"));
    assert.equal(await a.refresh("exec-1"), "lost");
    assert.equal(a.writableUntil("exec-1"), 0);
    assert.throws(() => a.assertWritable("exec-1", "s"), LeaseExpiredError);
  });
});

Deno.test("leases: a lease still ours after its writable time is expired, not taken back", async () => {
  await withLeases(async ({ a, kv }) => {
    assert.ok(await a.acquire("exec-1"));
    await new Promise((r) => setTimeout(r, TTL_MS));
    // Our last update landed unseen, too late: the lease may have been free meanwhile.
    await kv.put("exec-1", new TextEncoder().encode("engine-a"));
    assert.equal(await a.refresh("exec-1"), "expired");
    assert.equal(a.writableUntil("exec-1"), 0);
  });
});

Deno.test("leases: a holder that stops renewing stops writing before another engine can take over", async () => {
  await withLeases(async ({ a, b, bus, eventCount }) => {
    const workflow = { id: "wf" } as unknown as DriverRef["workflow"];
    const ref: DriverRef = { workflow, execId: "exec-1", correlationId: "exec-1", tasks: new TaskLedger() };
    const recorderA = new EventRecorder(bus, a);
    const recorderB = new EventRecorder(bus, b);
    assert.ok(await a.acquire("exec-1"));
    await recorderA.taskSucceeded(ref, "step", "task-1", { n: 1 }, 1, false);
    const before = await eventCount();
    // Engine A stalls (no renewal); engine B tries until the server frees the lease.
    while (!(await b.acquire("exec-1"))) await new Promise((r) => setTimeout(r, 50));
    const takenAt = Date.now();
    assert.ok(a.writableUntil("exec-1") < takenAt, "A's writes stopped before B took the lease");
    await assert.rejects(
      () => recorderA.taskSucceeded(ref, "step", "task-2", { n: 2 }, 1, false),
      LeaseExpiredError,
    );
    assert.equal(await eventCount(), before, "the refused write stored nothing");
    // A's renewal now finds B's entry: lost, and it stays unable to write.
    assert.equal(await a.refresh("exec-1"), "lost");
    await recorderB.taskSucceeded(ref, "step", "task-2", { n: 2 }, 1, false);
    assert.equal(await eventCount(), before + 1);
  });
});

/**
 * Fail-over before the TTL: engine B takes a lease from engine A once A's connection is gone (the server
 * says no one answers A's presence subject), never while A is connected; A, which may only have lost NATS,
 * stops writing at the disconnection and finds the lease lost when it renews. The TTL here is 60 s, so a
 * take-over that waited for it would time the test out.
 */
Deno.test("leases: another engine takes the lease of a gone engine at once, never of a live one", async () => {
  const nats = await startTestNats();
  const ncA = await connectNats(nats.url, { name: "engine-a" });
  const ncB = await connectNats(nats.url, { name: "engine-b" });
  try {
    await provisionJetStream(ncA, { ttlMs: { [BUCKETS.leases]: 60_000 } });
    const kvA = await new Kvm(ncA).open(BUCKETS.leases);
    const kvB = await new Kvm(ncB).open(BUCKETS.leases);
    const presenceA = new EnginePresence(ncA);
    const a = new Leases(kvA, "engine a.1", 60_000, presenceA);
    const b = new Leases(kvB, "engine-b", 60_000, new EnginePresence(ncB));
    const answering = presenceA.answer("engine a.1");
    assert.ok(await a.acquire("exec-1"));
    assert.equal(await b.acquire("exec-1"), false, "A answers: its lease stays A's");
    answering.unsubscribe();
    const started = Date.now();
    assert.ok(await b.acquire("exec-1"), "A is gone: B takes the lease");
    assert.ok(Date.now() - started < 10_000, `taken in ${Date.now() - started} ms, not after the TTL`);
    assert.equal((await kvB.get("exec-1"))?.string(), "engine-b");
    // A was only cut off: once it sees that, it may not write until a renewal confirms its lease.
    a.suspendAll();
    assert.throws(() => a.assertWritable("exec-1", "s"), LeaseExpiredError);
    assert.equal(await a.refresh("exec-1"), "lost");
    assert.equal(a.writableUntil("exec-1"), 0);
  } finally {
    await ncA.close();
    await ncB.close();
    await nats.stop();
  }
});

Deno.test("leases: a suspended lease still ours is writable again once a renewal confirms it", async () => {
  await withLeases(async ({ a }) => {
    assert.ok(await a.acquire("exec-1"));
    a.suspendAll();
    assert.equal(a.writableUntil("exec-1"), 0);
    assert.equal(await a.refresh("exec-1"), "held");
    assert.ok(a.writableUntil("exec-1") > Date.now());
  });
});

Deno.test("leases: a suspended lease whose entry vanished is lost, not taken back", async () => {
  await withLeases(async ({ a, kv }) => {
    assert.ok(await a.acquire("exec-1"));
    a.suspendAll();
    // Another engine took it over while this one was cut off, finished, and released it.
    await kv.delete("exec-1");
    assert.equal(await a.refresh("exec-1"), "lost");
  });
});

Deno.test("leases: a parked execution's lease is left to its engine while it is there, else taken", async () => {
  const nats = await startTestNats();
  const ncA = await connectNats(nats.url, { name: "engine-a" });
  const ncB = await connectNats(nats.url, { name: "engine-b" });
  try {
    await provisionJetStream(ncA, { ttlMs: { [BUCKETS.leases]: 60_000 } });
    const presenceA = new EnginePresence(ncA);
    const a = new Leases(await new Kvm(ncA).open(BUCKETS.leases), "engine-a", 60_000, presenceA);
    const presenceB = new EnginePresence(ncB);
    const b = new Leases(await new Kvm(ncB).open(BUCKETS.leases), "engine-b", 60_000, presenceB);
    presenceA.answer("engine-a");
    const answeringB = presenceB.answer("engine-b");
    // A parks two executions: their leases stay as hints of where they ran.
    for (const id of ["exec-1", "exec-2"]) {
      assert.ok(await a.acquire(id));
      await a.release(id, { parked: true });
    }
    assert.equal(await b.claim("exec-1", { yieldToParked: true }), "parked elsewhere");
    assert.equal(await a.claim("exec-1", { yieldToParked: true }), "acquired", "A takes its own back");
    // Past its yields (or once A is gone), B takes a parked lease at once: no driver writes for it.
    assert.equal(await b.claim("exec-2"), "acquired");
    assert.equal(await a.claim("exec-2", { yieldToParked: true }), "held elsewhere");
    await b.release("exec-2", { parked: true });
    answeringB.unsubscribe();
    assert.equal(await a.claim("exec-2", { yieldToParked: true }), "acquired", "B is gone: no yield");
  } finally {
    await ncA.close();
    await ncB.close();
    await nats.stop();
  }
});

Deno.test("leases: events carry the revision the lease was taken at; renewals keep it, a later holder's is higher", async () => {
  await withLeases(async ({ a, b, kv }) => {
    assert.ok(await a.acquire("exec-1"));
    const taken = a.assertWritable("exec-1", "s").revision;
    assert.equal(taken, (await kv.get("exec-1"))!.revision);
    assert.equal(await a.refresh("exec-1"), "held");
    assert.ok((await kv.get("exec-1"))!.revision > taken, "the renewal moved the entry");
    assert.equal(a.assertWritable("exec-1", "s").revision, taken, "its events keep the take's revision");
    // A stops renewing; B takes the lease once the TTL frees it.
    while (!(await b.acquire("exec-1"))) await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      b.assertWritable("exec-1", "s").revision > taken,
      "a later holder fences the earlier one's events",
    );
  });
});

Deno.test("leases: a parked holding taken back with no writer between resumes its revision; any other claim is new", async () => {
  await withLeases(async ({ a, jsm, taker }) => {
    assert.ok(await a.acquire("exec-1"));
    const taken = a.assertWritable("exec-1", "s").revision;
    assert.equal(a.resumed("exec-1"), false);
    await a.release("exec-1", { parked: true });
    // Its own marker, unchanged: no engine held the lease since, so nothing to fence (no take-over to append).
    assert.ok(await a.acquire("exec-1"));
    assert.equal(a.resumed("exec-1"), true);
    assert.equal(a.assertWritable("exec-1", "s").revision, taken, "its events keep the parked holding's");
    assert.equal(await a.refresh("exec-1"), "held");
    assert.equal(a.resumed("exec-1"), true, "a renewal keeps it");
    await a.release("exec-1", { parked: true });
    // Another engine took it from the marker and parked it in turn: A's next holding is a take-over.
    const b = taker("engine-b");
    assert.equal(await b.claim("exec-1"), "acquired");
    const bTaken = b.assertWritable("exec-1", "s").revision;
    assert.equal(b.resumed("exec-1"), false);
    assert.ok(bTaken > taken);
    await b.release("exec-1", { parked: true });
    assert.ok(await a.acquire("exec-1"));
    assert.equal(a.resumed("exec-1"), false);
    assert.ok(a.assertWritable("exec-1", "s").revision > bTaken, "B's events are fenced by A's new holding");
    // The same engine restarted (its id, no memory of what it parked): a new holding.
    await a.release("exec-1", { parked: true });
    const restarted = taker("engine-a");
    assert.ok(await restarted.acquire("exec-1"));
    assert.equal(restarted.resumed("exec-1"), false);
    await restarted.release("exec-1", { parked: true });
    assert.ok(await a.acquire("exec-1"));
    assert.equal(a.resumed("exec-1"), false, "nor is the marker of another holding of its id");
    // A release that was not a park leaves nothing to resume.
    await a.release("exec-1");
    assert.ok(await a.acquire("exec-1"));
    assert.equal(a.resumed("exec-1"), false);
    // The marker gone with the TTL (another engine's entry may have come and gone too): a new holding.
    await a.release("exec-1", { parked: true });
    await jsm.streams.purge(`KV_${BUCKETS.leases}`, { filter: `$KV.${BUCKETS.leases}.exec-1` });
    assert.ok(await a.acquire("exec-1"));
    assert.equal(a.resumed("exec-1"), false);
  });
});

Deno.test("leases: a write made for an ended holding is refused though the lease is held again, resumed or not", async () => {
  await withLeases(async ({ a }) => {
    assert.ok(await a.acquire("exec-1"));
    const first = a.holdingOf("exec-1")!;
    assert.equal(await a.refresh("exec-1"), "held");
    assert.equal(a.holdingOf("exec-1"), first, "a renewal keeps the holding");
    a.assertWritable("exec-1", "s", first);
    // Parked, then taken back from its own marker: the same revision, but another holding.
    await a.release("exec-1", { parked: true });
    assert.ok(await a.acquire("exec-1"));
    assert.equal(a.resumed("exec-1"), true);
    const resumed = a.holdingOf("exec-1")!;
    assert.notEqual(resumed, first);
    assert.throws(() => a.assertWritable("exec-1", "s", first), HoldingEndedError);
    a.assertWritable("exec-1", "s", resumed);
    // Released (a driver given up), then claimed again: a new holding too.
    await a.release("exec-1");
    assert.ok(await a.acquire("exec-1"));
    assert.throws(() => a.assertWritable("exec-1", "s", resumed), HoldingEndedError);
    assert.ok(a.assertWritable("exec-1", "s", a.holdingOf("exec-1")).revision > 0);
    // A write with no holding named (a take-over's, the executor's) is the current holding's.
    a.assertWritable("exec-1", "s");
  });
});

Deno.test("leases: a release while a renewal is under way frees the lease and leaves the parked marker (breaker2 D7)", async () => {
  await withLeases(async ({ a, kv }) => {
    for (const parked of [true, false]) {
      const execId = `exec-${parked}`;
      assert.ok(await a.acquire(execId));
      // The executor's hold() renews on an interval: its last renewal may be under way when the driver parks.
      const renewal = a.refresh(execId);
      await a.release(execId, { parked });
      assert.equal(await renewal, "held");
      // Before: the renewal's reply put the released holding back, and the release's write at the old revision
      // was refused (the marker lost, the lease left to expire with its TTL, the holding kept for ever).
      assert.equal(a.holdingOf(execId), undefined, "released, yet held again in memory");
      const entry = await kv.get(execId);
      if (parked) assert.equal(entry?.string(), "engine-a (parked)", "the parked marker was not written");
      else assert.notEqual(entry?.operation, "PUT", `the lease was not freed: ${entry?.string()}`);
    }
  });
});
