/**
 * The task documents of an execution as they are written, for the answer of a start that waits
 * (`?wait`, `run --wait`): a core NATS subscription on `$KV.<tasks bucket>.<exec id>.*`, made with the end
 * watch (end_watch.ts) before the start is sent on the same connection, sees every write of the execution's
 * task documents. The state manager writes an execution's end only once its tasks' documents are stored ended
 * (state_manager.ts), so when the end arrives each task's last write has arrived before it, and the answer
 * needs no read per task (20 direct gets after a 20-step workflow's end, issue 11).
 *
 * A core subscriber also sees a write the bucket refused (another engine's state manager, behind by a
 * revision): a document never replaces one folded from a later event (its `seq`). A task
 * missing here (a delete, a write lost in a reconnect, an execution past MAX_LISTED_TASKS) leaves the answer
 * to the reads.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { TaskDocument } from "./execution_state.ts";

const decoder = new TextDecoder();

export interface TaskWatch {
  /**
   * The documents of `taskExecIds` as last written, or undefined unless every one of them was seen (the
   * caller then reads them).
   */
  documents(taskExecIds: string[] | undefined): TaskDocument[] | undefined;
  stop(): void;
}

/** Subscribes now to the writes of the documents under `subjectPrefix` (`$KV.<bucket>.<exec id>.`). */
export function watchTasks(nc: NatsConnection, subjectPrefix: string): TaskWatch {
  const latest = new Map<string, TaskDocument>();
  const subscription = nc.subscribe(`${subjectPrefix}*`, {
    callback: (err, msg) => {
      if (err) return;
      const key = msg.subject.slice(subjectPrefix.length);
      const operation = msg.headers?.get("KV-Operation");
      if (operation === "DEL" || operation === "PURGE" || msg.data.byteLength === 0) {
        latest.delete(key);
        return;
      }
      let doc: TaskDocument;
      try {
        doc = JSON.parse(decoder.decode(msg.data)) as TaskDocument;
      } catch {
        latest.delete(key); // Not a document the state manager wrote: the reads answer.
        return;
      }
      const known = latest.get(key);
      if (known && (known.seq ?? 0) > (doc.seq ?? 0)) return;
      latest.set(key, doc);
    },
  });
  return {
    documents(taskExecIds) {
      if (!taskExecIds) return undefined;
      const docs: TaskDocument[] = [];
      for (const id of taskExecIds) {
        const doc = latest.get(id);
        if (!doc) return undefined;
        docs.push(doc);
      }
      return docs;
    },
    stop: () => subscription.unsubscribe(),
  };
}
