/**
 * One engine at a time folds the state events (STATE_FOLDER_ROLE): with two engines on the shared consumer,
 * each took a random part of every execution's events and both wrote its documents (more writes and reads,
 * and lost updates on nats-server 2.9 clusters; `deno task bench cluster`, R3 2 + 2). Two state managers
 * with the engines' leases: one writes every document, the other none; once the first stops, the second
 * takes the role and folds what follows.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { openStateStore } from "../../engine/mod.ts";
import { uuidv7 } from "../../engine/ids.ts";
import { Leases } from "../../engine/leases.ts";
import { EnginePresence } from "../../engine/engine_presence.ts";
import { StateManager } from "../../engine/state/state_manager.ts";
import type { StateStore } from "../../engine/state/state_store.ts";
import { waitForTerminalDocument } from "../../engine/state/end_watch.ts";
import { BUCKETS, Bus, type BusMessage, connectNats, provisionJetStream } from "../../pkg/nats/mod.ts";
import * as pb from "../../pkg/pb/mod.ts";
import { startTestNats } from "../support/nats.ts";

Deno.test({
  name: "state: one engine folds every execution's events; another takes over when it stops",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "state-folder-test" });
    const managers: StateManager[] = [];
    const answers: { unsubscribe(): void }[] = [];
    try {
      await provisionJetStream(nc);
      const bus = new Bus(nc, { source: "test" });
      const store = await openStateStore(nc);
      const kv = await new Kvm(nc).open(BUCKETS.leases);
      const ttl = (await kv.status()).ttl;
      const presence = new EnginePresence(nc);
      const writes = [0, 0];
      for (const i of [0, 1]) {
        answers.push(presence.answer(`engine-${i}`));
        const leases = new Leases(kv, `engine-${i}`, ttl, presence, jetstream(nc));
        const manager = new StateManager(bus, counting(store, () => writes[i]++), { leases });
        await manager.start();
        managers.push(manager);
      }
      const run = async () => {
        const execId = uuidv7();
        const task = { id: "a", execId: uuidv7() };
        const base = (eventId: string) => ({
          metadata: bus.metadata(execId, `${execId}:${eventId}`),
          workflow: { id: "wf", execId },
        });
        const publish = (message: unknown) => bus.publish(message as BusMessage);
        await publish(create(pb.WorkflowExecutionStartedSchema, base("started")));
        await publish(create(pb.TaskDispatchedSchema, { ...base("dispatched"), task, taskType: "basic" }));
        await publish(create(pb.TaskExecutionStartedSchema, { ...base("task-started"), task, attempt: 1 }));
        await publish(create(pb.TaskExecutionSuccessSchema, { ...base("task-success"), task, attempt: 1 }));
        await publish(create(pb.WorkflowExecutionSuccessSchema, {
          ...base("success"),
          tasks: { execIds: [task.execId], recordedExecIds: [task.execId] },
        }));
        return execId;
      };
      const ended = (execId: string) =>
        waitForTerminalDocument({
          nc,
          subject: store.workflowSubject(execId),
          read: () => store.getWorkflow(execId),
          onReconnect: () => () => {},
        }, 30_000);
      const first = await Promise.all(Array.from({ length: 20 }, run));
      for (const execId of first) assert.equal((await ended(execId))?.status, "SUCCESS", execId);
      const holder = writes[0] > 0 ? 0 : 1;
      assert.ok(writes[holder] > 0);
      assert.equal(writes[1 - holder], 0, `both engines wrote documents: ${writes.join(" and ")} writes`);

      await managers[holder].stop();
      answers[holder].unsubscribe();
      const before = writes[1 - holder];
      const later = await run();
      assert.equal((await ended(later))?.status, "SUCCESS", "folded by the engine that took the role");
      assert.ok(writes[1 - holder] > before);
    } finally {
      for (const manager of managers) await manager.stop();
      for (const answer of answers) answer.unsubscribe();
      await nc.close();
      await nats.stop();
    }
  },
});

/** `store`, with `wrote` called on each document write. */
function counting(store: StateStore, wrote: () => void): StateStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop === "putWorkflow" || prop === "putTask") {
        return (...args: unknown[]) => {
          wrote();
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
}
