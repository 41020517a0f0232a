/**
 * A task document left behind by a lost update does not hold its execution's end (ended_tasks.ts). On a
 * replicated bucket nats-server 2.9.10 checks an update's expected revision against applied writes only, so
 * two engines' updates of one task document at the same revision can both be accepted: in `deno task bench
 * cluster` (R3, 2 engines) one engine stored a task's SUCCESS over its SCHEDULED document and the other,
 * 150 ms later, its RUNNING over the same SCHEDULED revision; the document stayed RUNNING and the end waited
 * its 65 s bound (2 x the 30 s ack wait + 5 s) for it. Here, on a 3-node cluster with every bucket R3, one
 * state manager folds the tasks, the test overwrites a task's SUCCESS with what that lost update left, and a
 * second state manager (on another node) folds the end: it must be written long before that bound, with the
 * task's document ended again. Then the same for an engine that folded both the tasks and the end, whose own
 * SUCCESS was overwritten: it must not take that task as ended from memory.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Kvm } from "@nats-io/kv";
import { openStateStore } from "../../engine/mod.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { StateManager } from "../../engine/state/state_manager.ts";
import { waitForTerminalDocument } from "../../engine/state/end_watch.ts";
import { isTerminal } from "../../engine/state/execution_state.ts";
import { BUCKETS, Bus, type BusMessage, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { startTestCluster } from "../support/nats_cluster.ts";
import { until } from "../support/until.ts";

Deno.test({
  name: "state: an end is written although a task's SUCCESS was overwritten by a lost update (R3)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await startTestCluster(3);
    const urls = cluster.url.split(",");
    const nc1 = await connectNats(urls[0], { name: "state-lost-update-1" });
    const nc2 = await connectNats(urls[1], { name: "state-lost-update-2" });
    const managers: StateManager[] = [];
    try {
      await provisionJetStream(nc1, { replicas: 3 });
      const bus1 = new Bus(nc1, { source: "test" });
      const store1 = await openStateStore(nc1);
      const execId = uuidv7();
      const tasks = [{ id: "a", execId: uuidv7() }, { id: "b", execId: uuidv7() }];
      const base = (eventId: string) => ({
        metadata: bus1.metadata(execId, `${execId}:${eventId}`),
        workflow: { id: "wf", execId },
      });
      const publish = (message: unknown) => bus1.publish(message as BusMessage);
      // The engine that folds the tasks (the default 30 s ack wait: the end's bound is 65 s).
      const first = new StateManager(bus1, store1);
      managers.push(first);
      await first.start();
      await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
      for (const task of tasks) {
        await publish(
          create(pb.TaskDispatchedSchema, { ...base(`${task.id}-dispatched`), task, taskType: "basic" }),
        );
        await publish(
          create(pb.TaskExecutionStartedSchema, { ...base(`${task.id}-started`), task, attempt: 1 }),
        );
        await publish(
          create(pb.TaskExecutionSuccessSchema, { ...base(`${task.id}-success`), task, attempt: 1 }),
        );
      }
      const key = (task: { execId: string }) => `${execId}.${task.execId}`;
      await until(async () => {
        const docs = await Promise.all(tasks.map((t) => store1.getTaskWithRevision(key(t))));
        return docs.every(({ doc }) => doc && isTerminal(doc.status));
      }, 30_000);
      await first.stop();
      // What the lost update left: task b's document as of its start, written over its SUCCESS.
      const kv = await new Kvm(nc1).open(BUCKETS.taskExecutions);
      const { doc: ended } = await store1.getTaskWithRevision(key(tasks[1]));
      const { output: _output, ended_at: _endedAt, ...running } = ended!;
      await kv.put(
        key(tasks[1]),
        JSON.stringify({ ...running, status: "RUNNING", output: null, ended_at: null }),
      );

      // The engine that folds the end, on another node.
      const bus2 = new Bus(nc2, { source: "test" });
      const store2 = await openStateStore(nc2);
      const second = new StateManager(bus2, store2);
      managers.push(second);
      await second.start();
      const ids = tasks.map((t) => t.execId);
      await publish(create(pb.WorkflowExecutionSuccessSchema, {
        ...base("success"),
        tasks: { execIds: ids, recordedExecIds: ids },
      }));
      // Far below the 65 s the end waited for the overwritten task before (generous for a loaded machine).
      const end = await waitForTerminalDocument({
        nc: nc2,
        subject: store2.workflowSubject(execId),
        read: () => store2.getWorkflow(execId),
        onReconnect: () => () => {},
      }, 30_000);
      assert.equal(end?.status, "SUCCESS", `the end was not written within 30 s: ${JSON.stringify(end)}`);
      const state = await store2.withTasks(end!);
      assert.deepEqual(state.tasks.map((t) => [t.exec_id, t.status]), ids.map((id) => [id, "SUCCESS"]));

      // The same engine folds an execution's tasks and its end, and its own SUCCESS of a task is what the
      // lost update overwrote: it must not take the task as ended from memory (the API showed it CANCELED).
      const exec2 = uuidv7();
      const tasks2 = [{ id: "a", execId: uuidv7() }, { id: "b", execId: uuidv7() }];
      const base2 = (eventId: string) => ({
        metadata: bus1.metadata(exec2, `${exec2}:${eventId}`),
        workflow: { id: "wf", execId: exec2 },
      });
      await publish(create(pb.WorkflowExecutionStartedSchema, base2("started")));
      for (const task of tasks2) {
        await publish(
          create(pb.TaskDispatchedSchema, { ...base2(`${task.id}-dispatched`), task, taskType: "basic" }),
        );
        await publish(
          create(pb.TaskExecutionStartedSchema, { ...base2(`${task.id}-started`), task, attempt: 1 }),
        );
        await publish(
          create(pb.TaskExecutionSuccessSchema, { ...base2(`${task.id}-success`), task, attempt: 1 }),
        );
      }
      const key2 = (task: { execId: string }) => `${exec2}.${task.execId}`;
      await until(async () => {
        const docs = await Promise.all(tasks2.map((t) => store2.getTaskWithRevision(key2(t))));
        return docs.every(({ doc }) => doc && isTerminal(doc.status));
      }, 30_000);
      const { doc: ended2 } = await store2.getTaskWithRevision(key2(tasks2[1]));
      const { output: _output2, ended_at: _endedAt2, ...running2 } = ended2!;
      await kv.put(
        key2(tasks2[1]),
        JSON.stringify({ ...running2, status: "RUNNING", output: null, ended_at: null }),
      );
      const ids2 = tasks2.map((t) => t.execId);
      await publish(create(pb.WorkflowExecutionSuccessSchema, {
        ...base2("success"),
        tasks: { execIds: ids2, recordedExecIds: ids2 },
      }));
      const end2 = await waitForTerminalDocument({
        nc: nc2,
        subject: store2.workflowSubject(exec2),
        read: () => store2.getWorkflow(exec2),
        onReconnect: () => () => {},
      }, 30_000);
      assert.equal(
        end2?.status,
        "SUCCESS",
        `the second end was not written within 30 s: ${JSON.stringify(end2)}`,
      );
      const state2 = await store2.withTasks(end2!);
      assert.deepEqual(
        state2.tasks.map((t) => [t.exec_id, t.status]),
        ids2.map((id) => [id, "SUCCESS"]),
        "the task whose SUCCESS was overwritten is shown ended as it was",
      );
    } finally {
      for (const manager of managers) await manager.stop();
      await nc1.close();
      await nc2.close();
      await cluster.stop();
    }
  },
});
