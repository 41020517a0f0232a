/**
 * What state queries cost, counted on the wire as the requests nats-server receives for the bucket of
 * execution documents. Waiting for an execution's end is event-driven: the wait reads the document once
 * (after it subscribed to the document's writes) and learns of the end from the write, however long it
 * waits. Listing by workflow or status reads the documents of the matching executions only (an index).
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { openStateStore } from "../../engine/mod.ts";
import { NatsExecutionClient } from "../../engine/execution_client.ts";
import type { WorkflowDocument } from "../../engine/state/execution_state.ts";
import { BUCKETS, connectNats } from "../../pkg/nats/mod.ts";
import { type EngineHarness, scriptedRuntime, startEngineHarness } from "../support/engine.ts";

const PROJECT = {
  "compozy.yaml": "name: waits\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: main
tools:
  - id: echo
    execute: ./t.ts
tasks:
  - id: approve
    type: wait
    signal: go
    timeout: 1m
  - id: done
    use: tool(id=echo)
    with: { by: "{{ .tasks.approve.output.by }}" }
`,
  "t.ts": "export default (input: unknown) => input;\n",
};

/** Counts the reads of a bucket's documents that reach nats-server (direct gets and message gets). */
async function countDocumentReads(h: EngineHarness, bucket: string = BUCKETS.workflowExecutions) {
  const nc = await connectNats(h.nats.url, { name: "read-counter" });
  const stream = `KV_${bucket}`;
  let reads = 0;
  let apiReads = 0;
  for (
    const subject of [
      `$JS.API.DIRECT.GET.${stream}.>`,
      `$JS.API.DIRECT.GET.${stream}`,
      `$JS.API.STREAM.MSG.GET.${stream}`,
    ]
  ) {
    nc.subscribe(subject, {
      callback: () => {
        reads++;
        if (subject.startsWith("$JS.API.STREAM.")) apiReads++;
      },
    });
  }
  await nc.flush();
  // A request reaches this connection on its own socket, maybe after its answer reached the reader: a round
  // trip here first (the server writes what it delivered before the PONG) counts every request made so far.
  return {
    async reset() {
      await nc.flush();
      reads = apiReads = 0;
    },
    async reads() {
      await nc.flush();
      return reads;
    },
    /** Reads through the JetStream API rather than direct gets. */
    async apiReads() {
      await nc.flush();
      return apiReads;
    },
    close: () => nc.close(),
  };
}

async function untilStatus(h: EngineHarness, execId: string, status: string): Promise<void> {
  // Bounded by the step's time-out, not by a count of tries.
  while ((await h.engine.client.get(execId))?.status !== status) await new Promise((r) => setTimeout(r, 20));
}

Deno.test("waiting for an execution's end", async (t) => {
  const h = await startEngineHarness(PROJECT);
  const runtime = scriptedRuntime(h.bus, { echo: (input) => input });
  const counter = await countDocumentReads(h);
  try {
    const { execId } = await h.engine.client.trigger("main", {});
    const ids = { first: execId };
    await untilStatus(h, execId, "WAITING");

    await t.step("a long wait reads the document once and answers from the end's write", async () => {
      await counter.reset();
      const waiting = h.engine.client.waitForEnd(execId, 30_000);
      // Long enough for a polling wait to read many times (it read every 5-100 ms).
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(await counter.reads(), 1);
      await h.engine.client.signal(execId, "go", { by: "ada" }); // Reads the document once itself.
      const state = await waiting;
      assert.equal(state.status, "SUCCESS");
      assert.deepEqual(state.output, { by: "ada" });
      assert.equal(state.tasks.length, 2);
      assert.equal(await counter.reads(), 2);
    });

    await t.step("an execution that ended before the wait began is answered from the one read", async () => {
      await counter.reset();
      const state = await h.engine.client.waitForEnd(execId, 30_000);
      assert.equal(state.status, "SUCCESS");
      assert.equal(await counter.reads(), 1);
    });

    await t.step("a start and wait reads no execution document: it watched before the start", async () => {
      // A client of its own, on a store that counts the client's reads of execution documents.
      const store = await openStateStore(h.nc);
      let reads = 0;
      const counted = Object.assign(Object.create(store), {
        getWorkflow: (id: string) => (reads++, store.getWorkflow(id)),
      }) as typeof store;
      const client = new NatsExecutionClient(h.bus, jetstream(h.nc), counted, h.project);
      // The new execution is found from its document's writes, which cost no read.
      let waitingId: string | undefined;
      const writes = h.nc.subscribe(`$KV.${BUCKETS.workflowExecutions}.*`, {
        callback: (_err, msg) => {
          const doc = msg.data.length ? msg.json<WorkflowDocument>() : undefined;
          if (doc?.exec_id !== ids.first && doc?.status === "WAITING") waitingId = doc.exec_id;
        },
      });
      try {
        await h.nc.flush();
        const started = client.triggerAndWait("main", {}, {}, 30_000);
        while (!waitingId) await new Promise((r) => setTimeout(r, 20));
        await h.engine.client.signal(waitingId, "go", { by: "grace" });
        const { execId, state } = await started;
        assert.equal(execId, waitingId);
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(state.output, { by: "grace" });
        assert.equal(reads, 0, "the start and wait read the execution's document");
      } finally {
        writes.unsubscribe();
      }
    });

    await t.step("a start and wait reads no task document: their writes came before the end's", async () => {
      const taskReads = await countDocumentReads(h, BUCKETS.taskExecutions);
      let waitingId: string | undefined;
      const writes = h.nc.subscribe(`$KV.${BUCKETS.workflowExecutions}.*`, {
        callback: (_err, msg) => {
          const doc = msg.data.length ? msg.json<WorkflowDocument>() : undefined;
          if (doc?.exec_id !== ids.first && doc?.status === "WAITING") waitingId = doc.exec_id;
        },
      });
      try {
        await h.nc.flush();
        waitingId = undefined;
        const started = h.engine.client.triggerAndWait("main", {}, {}, 30_000);
        while (!waitingId) await new Promise((r) => setTimeout(r, 20));
        await taskReads.reset();
        await h.engine.client.signal(waitingId, "go", { by: "lin" });
        const { state } = await started;
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(
          state.tasks.map((task) => [task.task_id, task.status, task.output]),
          [["approve", "SUCCESS", { by: "lin" }], ["done", "SUCCESS", { by: "lin" }]],
        );
        assert.equal(await taskReads.reads(), 0, "the answer read the execution's task documents");
        // A later read gives the same tasks (seq and lease left out of both).
        assert.deepEqual((await h.engine.client.get(state.exec_id))?.tasks, state.tasks);
      } finally {
        writes.unsubscribe();
        await taskReads.close();
      }
    });

    await t.step("a wait that runs out answers with the state at that moment", async () => {
      const { execId: other } = await h.engine.client.trigger("main", {});
      await untilStatus(h, other, "WAITING");
      await counter.reset();
      const state = await h.engine.client.waitForEnd(other, 300);
      assert.equal(state.status, "WAITING");
      assert.equal(await counter.reads(), 1);
    });
  } finally {
    await counter.close();
    runtime.stop();
    await h.close();
  }
});

Deno.test("listing executions by workflow and status reads only the matching documents", async () => {
  const h = await startEngineHarness(PROJECT);
  const runtime = scriptedRuntime(h.bus, { echo: (input) => input });
  const counter = await countDocumentReads(h);
  try {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await h.engine.client.trigger("main", {})).execId);
    for (const id of ids) await untilStatus(h, id, "WAITING");
    await h.engine.client.signal(ids[1], "go", { by: "ada" });
    assert.equal((await h.engine.client.waitForEnd(ids[1], 30_000)).status, "SUCCESS");

    counter.reset();
    const done = await h.engine.client.list({ workflowId: "main", status: "SUCCESS" });
    assert.deepEqual(done.items.map((s) => s.exec_id), [ids[1]]);
    assert.equal(await counter.reads(), 1); // A scan read all 4 documents.

    const waiting = await h.engine.client.list({ status: "WAITING" });
    assert.deepEqual(waiting.items.map((s) => s.exec_id), [ids[3], ids[2], ids[0]]); // Newest first.
    const firstPage = await h.engine.client.list({ workflowId: "main", limit: 2 });
    assert.equal(firstPage.items.length, 2);
    const secondPage = await h.engine.client.list({
      workflowId: "main",
      limit: 2,
      cursor: firstPage.next_cursor!,
    });
    assert.deepEqual(
      [...firstPage.items, ...secondPage.items].map((s) => s.exec_id),
      [...ids].reverse(),
    );
    assert.deepEqual((await h.engine.client.list({ workflowId: "other" })).items, []);
    assert.deepEqual((await h.engine.client.list({ workflowId: "*" })).items, []);
  } finally {
    await counter.close();
    runtime.stop();
    await h.close();
  }
});

/** Counts the JetStream API requests that make nats-server 2.9 walk every stored subject of a stream. */
async function countSubjectWalks(h: EngineHarness) {
  const nc = await connectNats(h.nats.url, { name: "walk-counter" });
  const walks: string[] = [];
  const decoder = new TextDecoder();
  nc.subscribe("$JS.API.STREAM.>", {
    callback: (_e, msg) => {
      const body = msg.data.byteLength ? JSON.parse(decoder.decode(msg.data)) : {};
      if (body.subjects_filter || body.filter) walks.push(msg.subject);
    },
  });
  await nc.flush();
  // As countDocumentReads: a round trip first, so that every request made so far is counted.
  return {
    async walks() {
      await nc.flush();
      return walks;
    },
    close: () => nc.close(),
  };
}

Deno.test("a state read and a run's end walk no stream's subjects; the index keeps one entry", async () => {
  const h = await startEngineHarness(PROJECT);
  const runtime = scriptedRuntime(h.bus, { echo: (input) => input });
  const counter = await countSubjectWalks(h);
  try {
    const { execId } = await h.engine.client.trigger("main", {});
    await untilStatus(h, execId, "WAITING");
    await h.engine.client.signal(execId, "go", { by: "ada" });
    const ended = await h.engine.client.waitForEnd(execId, 30_000);
    assert.equal(ended.status, "SUCCESS");
    assert.deepEqual(ended.tasks.map((t) => [t.task_id, t.status]), [["approve", "SUCCESS"], [
      "done",
      "SUCCESS",
    ]]);
    assert.deepEqual((await h.engine.client.get(execId))?.tasks.length, 2);
    // The task list is read by key, the index entries of RUNNING and WAITING are deleted by sequence, and
    // the end lists its tasks itself (EndedTasks): nothing walks the task bucket.
    assert.deepEqual(await counter.walks(), []);

    const jsm = await jetstreamManager(h.nc);
    const index = await jsm.streams.info(`KV_${BUCKETS.executionIndex}`, { subjects_filter: ">" });
    assert.deepEqual(Object.keys(index.state.subjects ?? {}), [
      `$KV.${BUCKETS.executionIndex}.main.SUCCESS.${execId}`,
    ]);

    // A document written before it listed its tasks: they are found through the bucket's keys.
    const kv = await new Kvm(h.nc).open(BUCKETS.workflowExecutions);
    const { task_ids: _taskIds, ...unlisted } = (await kv.get(execId))!.json<WorkflowDocument>();
    await kv.put(execId, JSON.stringify(unlisted));
    assert.deepEqual((await h.engine.client.get(execId))?.tasks.map((t) => t.task_id), ["approve", "done"]);
  } finally {
    await counter.close();
    runtime.stop();
    await h.close();
  }
});

Deno.test("a task's document is created without a read: a run reads its tasks only to answer, directly", async () => {
  const h = await startEngineHarness({
    "compozy.yaml": "name: steps\nworkflows:\n  - source: ./wf.yaml\n",
    "wf.yaml": `id: two
tools:
  - id: echo
    execute: ./t.ts
tasks:
  - id: first
    use: tool(id=echo)
  - id: second
    use: tool(id=echo)
`,
    "t.ts": "export default (input: unknown) => input;\n",
  });
  const runtime = scriptedRuntime(h.bus, { echo: (input) => input });
  const counter = await countDocumentReads(h, BUCKETS.taskExecutions);
  try {
    const { execId } = await h.engine.client.trigger("two", {});
    const ended = await h.engine.client.waitForEnd(execId, 30_000);
    assert.equal(ended.status, "SUCCESS");
    assert.equal(ended.tasks.length, 2);
    assert.equal(await counter.reads(), 2); // The answer's read of each task; the state manager read none.
    // A bucket of one replica is read with direct gets (no request through the JetStream API).
    assert.equal(await counter.apiReads(), 0);
  } finally {
    await counter.close();
    runtime.stop();
    await h.close();
  }
});
