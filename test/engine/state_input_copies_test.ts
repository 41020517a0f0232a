/**
 * What a write of an execution's document costs does not grow with its input (issue 11). A collection's
 * items are the execution's input, in its document; its tasks' events are folded into that document in
 * hundreds of writes. Each write used to copy and serialize the whole document twice more to fold and to
 * compare, so 10,000 items cost O(items) per write on top of the write itself; and each fold that changed
 * nothing read and parsed the whole document again to check its revision. Counted here, not timed: the input
 * is serialized once per stored write and never by a fold or its comparison, and the document, cached since
 * its first write, is never read back.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { openStateStore } from "../../engine/mod.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { StateManager } from "../../engine/state/state_manager.ts";
import { waitForTerminalDocument } from "../../engine/state/end_watch.ts";
import type { WorkflowDocument } from "../../engine/state/execution_state.ts";
import { MAX_LISTED_TASKS } from "../../engine/state/execution_state.ts";
import { Bus, type BusMessage, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { startTestNats } from "../support/nats.ts";

const ITEMS = Array.from({ length: 1_000 }, (_, i) => i);
const TASKS = MAX_LISTED_TASKS + 72;

Deno.test({
  name: "state: folding a task's events never copies, serializes or reads back the execution's input",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "state-input-copies-test" });
    const manager = { current: undefined as StateManager | undefined };
    try {
      await provisionJetStream(nc);
      const bus = new Bus(nc, { source: "test" });
      const store = await openStateStore(nc);
      // Every read of the input's items (JSON.stringify or structuredClone of the document) is counted; each
      // document the state manager stores gets such an input just before it is serialized.
      let itemReads = 0;
      let writes = 0;
      const itemsOf = new WeakMap<object, unknown>(); // A counted input's items, read without counting.
      const counted = (items: unknown) => {
        const input = {
          get items() {
            itemReads++;
            return items;
          },
        };
        itemsOf.set(input, items);
        return input;
      };
      const putWorkflow = store.putWorkflow.bind(store);
      store.putWorkflow = (doc: WorkflowDocument, revision: number) => {
        writes++;
        const input = doc.input as { items: unknown };
        doc.input = counted(itemsOf.has(input) ? itemsOf.get(input) : input.items);
        return putWorkflow(doc, revision);
      };
      let documentsRead = 0;
      const getWorkflowWithRevision = store.getWorkflowWithRevision.bind(store);
      store.getWorkflowWithRevision = async (key: string) => {
        const read = await getWorkflowWithRevision(key);
        if (read.doc) documentsRead++;
        return read;
      };
      manager.current = new StateManager(bus, store);
      await manager.current.start();

      const execId = uuidv7();
      const base = (eventId: string) => ({
        metadata: bus.metadata(execId, `${execId}:${eventId}`),
        workflow: { id: "fanout", execId },
      });
      const publish = (message: unknown) => bus.publish(message as BusMessage);
      const inputJson = new TextEncoder().encode(JSON.stringify({ items: ITEMS }));
      await publish(create(pb.WorkflowExecutionStartedSchema, { ...base("started"), inputJson }));
      const taskExecIds = Array.from({ length: TASKS }, () => uuidv7());
      for (const [i, taskExecId] of taskExecIds.entries()) {
        const task = { id: "one", execId: taskExecId };
        await publish(create(pb.TaskDispatchedSchema, { ...base(`d${i}`), task, taskType: "basic" }));
        await publish(create(pb.TaskExecutionSuccessSchema, { ...base(`s${i}`), task, attempt: 1 }));
      }
      await publish(create(pb.WorkflowExecutionSuccessSchema, base("end")));

      const doc = await waitForTerminalDocument({
        nc,
        subject: store.workflowSubject(execId),
        read: async () => (await getWorkflowWithRevision(execId)).doc, // Not counted: the test's own reads.
        onReconnect: () => () => {},
      }, 60_000);
      assert.equal(doc?.status, "SUCCESS");
      assert.deepEqual(doc?.input, { items: ITEMS });
      // Past the bound the list of tasks is dropped: the later events change nothing in the document.
      assert.equal(doc?.task_ids, undefined);
      assert.ok(writes >= 2, `${writes} writes`);
      // Once per stored write (putWorkflow's own JSON), never for a fold or its "did anything change?".
      assert.equal(itemReads, writes, `${itemReads} reads of the input for ${writes} writes`);
      // The events that changed nothing (past the bound) checked the stored revision, not the document.
      assert.equal(documentsRead, 0, `the document was read back ${documentsRead} times`);
    } finally {
      await manager.current?.stop();
      await nc.close();
      await nats.stop();
    }
  },
});
