/**
 * A signal task sent again by the replay of its attempt (its success could not be stored: a crash or a lost
 * lease between the send and the record) is delivered once. The signal's message had a new id on each send,
 * so a target with a second wait for the same signal took the copy as a second signal (exactly-once: a
 * Temporal signal from a workflow is deduplicated by its request id). Real nats-server and engine; the
 * failed write of the success is injected.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { type BusMessage, PublishError, STREAMS } from "../../pkg/nats/mod.ts";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import {
  TaskExecutionSuccessSchema,
  TaskExecutionWaitingEndedSchema,
  WorkflowSignalSchema,
} from "../../pkg/pb/mod.ts";
import { run, waitForStatus } from "../support/flows.ts";
import { type EngineHarness, scriptedRuntime, startEngineHarness } from "../support/engine.ts";

Deno.test({
  name: "a signal task replayed after its success was not stored delivers its signal once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness({
      "compozy.yaml":
        "name: sig\nworkflows:\n  - source: ./waiter.yaml\n  - source: ./main.yaml\n  - source: ./busy.yaml\n" +
        "  - source: ./pair.yaml\n  - source: ./late.yaml\n  - source: ./running.yaml\n  - source: ./once.yaml\n",
      "waiter.yaml": `id: waiter
tasks:
  - { id: first, type: wait, signal: go }
  - { id: second, type: wait, signal: go }
`,
      "t.ts": "export default (input: unknown) => input;\n",
      "busy.yaml": `id: busy
tools:
  - { id: hold, execute: ./t.ts }
tasks:
  - id: both
    type: parallel
    tasks:
      - id: waits
        type: composite
        tasks:
          - { id: first, type: wait, signal: go }
          - { id: second, type: wait, signal: go }
      - { id: busy, use: tool(id=hold) }
`,
      "pair.yaml": `id: pair
tasks:
  - id: both
    type: parallel
    tasks:
      - { id: a, type: wait, signal: go }
      - { id: b, type: wait, signal: go }
`,
      "late.yaml": `id: late
tasks:
  - { id: first, type: wait, signal: start }
  - { id: w, type: wait, signal: go }
`,
      "running.yaml": `id: running
tools:
  - { id: hold, execute: ./t.ts }
tasks:
  - id: both
    type: parallel
    tasks:
      - id: waits
        type: composite
        tasks:
          - { id: first, type: wait, signal: start }
          - { id: w, type: wait, signal: go }
      - { id: busy, use: tool(id=hold) }
`,
      "once.yaml": `id: once
tasks:
  - { id: w, type: wait, signal: go }
`,
      "main.yaml": `id: main
tasks:
  - id: s
    type: signal
    signal: { id: go, payload: { n: 1 } }
    target: "{{ .workflow.input.target }}"
`,
    });
    let release!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    // `running`'s call is held apart: `busy`'s is released before `running` starts.
    let releaseRunning!: () => void;
    const runningHeld = new Promise<void>((resolve) => releaseRunning = resolve);
    const runtime = scriptedRuntime(h.bus, {
      hold: (_input, call) => (call.workflow?.id === "running" ? runningHeld : held).then(() => ({})),
    });
    try {
      const { client } = h.engine;
      const waiter = (await client.trigger("waiter", {})).execId;
      await waitForStatus(h, waiter, "WAITING");
      let refused = 0;
      const sent: BusMessage[] = [];
      const publish = h.bus.publish.bind(h.bus);
      h.bus.publish = async (message: BusMessage, options) => {
        sent.push(message);
        if (
          message.$typeName === TaskExecutionSuccessSchema.typeName && message.task?.id === "s" &&
          refused++ === 0
        ) {
          // The signal went out; its task's success cannot be written (a lease that ran out, a crash).
          throw new PublishError("the test holds the success back", "task.success", 1);
        }
        return await publish(message, options);
      };
      const state = await run(h, { target: waiter });
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.ok(refused >= 2, `the signal task ran again (${refused} successes)`);
      // The one signal sent ends `first` only; before the fix its copy ended `second` too.
      await new Promise((r) => setTimeout(r, 1_000));
      const w = await client.get(waiter);
      assert.deepEqual(
        w?.tasks.map((t) => `${t.task_id}:${t.status}`),
        ["first:SUCCESS", "second:WAITING"],
      );
      assert.equal(w?.status, "WAITING");

      // A replay later than the command stream's duplicate window (2 min by default; 100 ms here, its least) sends the
      // copy again, and the server stores it: the target drops it, its history says a wait took that
      // message. Before the fix, `second` took it.
      const [copy] = sent.filter((m) => m.$typeName === WorkflowSignalSchema.typeName);
      assert.ok(copy, "the signal task's signal was seen");
      const jsm = await jetstreamManager(h.nc);
      await jsm.streams.update(STREAMS.workflowCommands, { duplicate_window: nanos(100) });
      let ack = await publish(copy);
      for (let tries = 0; ack.duplicate && tries < 100; tries++) {
        await new Promise((r) => setTimeout(r, 50));
        ack = await publish(copy);
      }
      assert.equal(ack.duplicate, false, "the copy was stored past the duplicate window");
      await handled(jsm, ack.seq);
      await client.signal(waiter, "go", { n: 2 });
      const ended = await client.waitForEnd(waiter, 10_000);
      assert.deepEqual(
        ended.tasks.map((t) => `${t.task_id}:${JSON.stringify(t.output)}`),
        ['first:{"n":1}', 'second:{"n":2}'],
      );

      // The same copy reaching a running execution (a tool call holds it active, not parked): its driver drops
      // it. Before the fix its second wait took it.
      const busy = (await client.trigger("busy", {})).execId;
      await waitForTask(h, busy, "both/busy", "RUNNING");
      await waitForTask(h, busy, "both/waits/first", "WAITING");
      const signal = create(WorkflowSignalSchema, {
        metadata: h.bus.metadata(busy, "eng42-copy"),
        workflow: { id: "busy", execId: busy },
        signalId: "go",
        payloadJson: new TextEncoder().encode(JSON.stringify({ n: 1 })),
      });
      await publish(signal);
      await waitForTask(h, busy, "both/waits/second", "WAITING");
      let again = await publish(signal);
      for (let tries = 0; again.duplicate && tries < 100; tries++) {
        await new Promise((r) => setTimeout(r, 50));
        again = await publish(signal);
      }
      assert.equal(again.duplicate, false, "the copy was stored past the duplicate window");
      await handled(jsm, again.seq);
      release();
      await client.signal(busy, "go", { n: 2 });
      const busyEnd = await client.waitForEnd(busy, 10_000);
      assert.deepEqual(busyEnd.output, { busy: {}, waits: { n: 2 } });

      // One signal ends every wait for it. When the record of the second wait's end fails (a crash, a lost
      // lease between the two records), the message is delivered again, and the wait it has not ended yet
      // must still take it: its id being taken by the first wait makes it no copy for the second. Before the
      // fix the whole message was dropped and `b` waited for ever.
      const pair = (await client.trigger("pair", {})).execId;
      await waitForTask(h, pair, "both/a", "WAITING");
      await waitForTask(h, pair, "both/b", "WAITING");
      let refusedEnd = 0;
      h.bus.publish = async (message: BusMessage, options) => {
        if (
          message.$typeName === TaskExecutionWaitingEndedSchema.typeName && message.task?.id === "both/b" &&
          refusedEnd++ === 0
        ) {
          throw new PublishError("the test holds the second wait's end back", "task.waiting_ended", 1);
        }
        return await publish(message, options);
      };
      await client.signal(pair, "go", { n: 3 });
      const pairEnd = await client.waitForEnd(pair, 10_000);
      assert.equal(refusedEnd >= 1, true, "the second wait's end was refused once");
      assert.deepEqual(
        pairEnd.output,
        { a: { n: 3 }, b: { n: 3 } },
        JSON.stringify([pairEnd.status, pairEnd.error, pairEnd.tasks.map((t) => [t.task_id, t.status])]),
      );

      // A signal's fate is fixed at its first arrival. One that no wait takes (no wait listens for it yet) is
      // dropped, and a copy of it stored later (past the duplicate window) is dropped too, though a wait for
      // it has opened since: while the target is parked (dropped before any take-over) and while a tool call
      // keeps it running (dropped by its driver). Before the fix, nothing recorded the drop and `w` took the
      // copy.
      // The third case's message id is longer than a subject nats-server takes in a publish's control line
      // (4 KiB): its drop was recorded under a key made of it, whose put closed the engine's connection and
      // never got through (eng45), so the command was never acknowledged. The key is the id's hash now.
      h.bus.publish = publish;
      const statuses: string[] = [];
      (async () => {
        for await (const s of h.nc.status()) if (s.type === "error") statuses.push(JSON.stringify(s));
      })();
      const cases = [["late", "", "short"], ["running", "both/waits/", "short"], [
        "late",
        "",
        "x".repeat(4_000),
      ]];
      for (const [workflow, prefix, tag] of cases) {
        const messageId = `sig44-early-${workflow}-${tag}`;
        const execId = (await client.trigger(workflow, {})).execId;
        if (workflow === "running") await waitForTask(h, execId, "both/busy", "RUNNING");
        await waitForTask(h, execId, `${prefix}first`, "WAITING");
        const early = create(WorkflowSignalSchema, {
          metadata: h.bus.metadata(execId, messageId),
          workflow: { id: workflow, execId },
          signalId: "go",
          payloadJson: new TextEncoder().encode(JSON.stringify({ n: 1 })),
        });
        await handled(jsm, (await publish(early)).seq);
        await client.signal(execId, "start", {});
        await waitForTask(h, execId, `${prefix}w`, "WAITING");
        await handled(jsm, (await storedAgain(publish, early)).seq);
        // A take is recorded before its command is acknowledged: the history shows it by now.
        const takes = (await client.events(execId)).filter((e) =>
          e.type === "task.waiting_ended" &&
          (e.data as { signalMessageId?: string }).signalMessageId === messageId
        );
        assert.deepEqual(
          takes,
          [],
          `${workflow}: a wait took the copy of a signal dropped at its first arrival`,
        );
        if (workflow === "running") releaseRunning();
        await client.signal(execId, "go", { n: 2 });
        const end = await client.waitForEnd(execId, 10_000);
        assert.equal(
          JSON.stringify(end.tasks.find((t) => t.task_id === `${prefix}w`)?.output),
          '{"n":2}',
          `${workflow}: the copy of a dropped signal was not taken`,
        );
      }
      assert.deepEqual(statuses, [], "the engine's connection saw no error");

      // A signal task's replay gives the outcome its attempt decided: its target took the signal and ended
      // before the task's success could be stored, and the replay still counts it. Before the fix the replay
      // looked the target up again, found it ended, and recorded `delivered: 0`.
      const once = (await client.trigger("once", {})).execId;
      await waitForTask(h, once, "w", "WAITING");
      let refusedOnce = 0;
      h.bus.publish = async (message: BusMessage, options) => {
        if (
          message.$typeName === TaskExecutionSuccessSchema.typeName && message.task?.id === "s" &&
          refusedOnce++ === 0
        ) {
          await client.waitForEnd(once, 10_000);
          throw new PublishError("the test holds the success back until the target ended", "task.success", 1);
        }
        return await publish(message, options);
      };
      const sender = await run(h, { target: once });
      assert.equal(refusedOnce >= 2, true, "the signal task ran again");
      assert.equal((await client.get(once))?.status, "SUCCESS");
      assert.deepEqual(sender.tasks.map((t) => [t.task_id, t.output]), [["s", {
        signal: "go",
        delivered: 1,
      }]]);
    } finally {
      release();
      releaseRunning();
      runtime.stop();
      await h.close();
    }
  },
});

/** Publishes `message` until the stream stores it (past its duplicate window, cut to 100 ms by the test). */
async function storedAgain(
  publish: (m: BusMessage) => Promise<{ seq: number; duplicate: boolean }>,
  message: BusMessage,
): Promise<{ seq: number; duplicate: boolean }> {
  let ack = await publish(message);
  for (let tries = 0; ack.duplicate && tries < 100; tries++) {
    await new Promise((r) => setTimeout(r, 50));
    ack = await publish(message);
  }
  assert.equal(ack.duplicate, false, "the copy was stored past the duplicate window");
  return ack;
}

Deno.test({
  name: "signal tasks of two collection items and of two composite attempts each deliver their own signal",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness({
      "compozy.yaml": "name: sig\nworkflows:\n  - source: ./waiter.yaml\n  - source: ./main.yaml\n",
      "waiter.yaml": `id: waiter
tasks:
  - id: all
    type: parallel
    tasks:
      - { id: w1, type: wait, signal: go, condition: "{{ .signal.payload.n == 1 }}" }
      - { id: w2, type: wait, signal: go, condition: "{{ .signal.payload.n == 2 }}" }
      - id: twice
        type: composite
        tasks:
          - { id: w3, type: wait, signal: go, condition: "{{ .signal.payload.n == 3 }}" }
          - { id: w4, type: wait, signal: go, condition: "{{ .signal.payload.n == 3 }}" }
`,
      "t.ts": "export default (input: unknown) => input;\n",
      "main.yaml": `id: main
tools:
  - { id: boom, execute: ./t.ts }
tasks:
  - id: each
    type: collection
    mode: sequential
    items: [1, 2]
    task:
      id: s
      type: signal
      signal: { id: go, payload: { n: "{{ .item }}" } }
      target: "{{ .workflow.input.target }}"
  - id: c
    type: composite
    # The back-off gives the waiter time to start w4 after w3 took the first attempt's signal.
    retry: { max_attempts: 2, backoff: { initial: 1s, max: 1s, factor: 1 } }
    tasks:
      - { id: cs, type: signal, signal: { id: go, payload: { n: 3 } }, target: "{{ .workflow.input.target }}" }
      - { id: gate, use: tool(id=boom) }
`,
    });
    const runtime = scriptedRuntime(h.bus, {
      boom: () => {
        throw new Error("boom");
      },
    });
    try {
      const { client } = h.engine;
      const waiter = (await client.trigger("waiter", {})).execId;
      await waitForStatus(h, waiter, "WAITING");
      const state = await run(h, { target: waiter });
      // `gate`'s tool fails: the composite's first attempt fails, its second too.
      assert.equal(state.status, "FAILED", JSON.stringify(state));
      const w = await client.waitForEnd(waiter, 10_000);
      assert.equal(w.status, "SUCCESS");
    } finally {
      runtime.stop();
      await h.close();
    }
  },
});

async function waitForTask(h: EngineHarness, execId: string, taskId: string, status: string): Promise<void> {
  for (let tries = 0; tries < 500; tries++) {
    const state = await h.engine.client.get(execId);
    if (state?.tasks.find((t) => t.task_id === taskId)?.status === status) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`task ${taskId} of ${execId} did not reach ${status} within 10 s`);
}

/**
 * Waits (at most 10 s) until the engine has acknowledged the command at stream sequence `seq`: WORKFLOW_CMDS
 * is a work queue, so an acknowledged message is removed (the ack floor stays behind the commands still held).
 */
async function handled(jsm: JetStreamManager, seq: number): Promise<void> {
  for (let tries = 0; tries < 500; tries++) {
    // null once the message is gone.
    if (await jsm.streams.getMessage(STREAMS.workflowCommands, { seq }) === null) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the engine did not acknowledge command ${seq} within 10 s`);
}
