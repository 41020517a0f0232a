/**
 * Execution state in JetStream KV: one document per execution (`compozy_workflow_executions`, key = exec
 * id) and one per task execution (`compozy_task_executions`, key = `<exec id>.<task exec id>`), so reading
 * or writing one never costs the size of a whole large execution.
 */
import { JetStreamApiError, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { getLogger } from "../../pkg/logger/mod.ts";
import {
  type ExecutionState,
  executionUsage,
  isTerminal,
  type TaskDocument,
  type TaskExecutionState,
  type WorkflowDocument,
} from "./execution_state.ts";

/** A bucket; `direct`: read with direct gets (see openStateStore), else through the JetStream API. */
export interface StateBucket {
  kv: KV;
  name: string;
  direct?: boolean;
  /** The bucket's replicas (1 when not known). */
  replicas?: number;
}

export interface StateBuckets {
  workflows: StateBucket;
  tasks: StateBucket;
  /** The index of waits by signal: key `<signal id>.<exec id>`. */
  waiting: StateBucket;
  /** The index of executions by workflow and status: key `<workflow id>.<status>.<exec id>`. */
  index: StateBucket;
  /** The index of running sub-workflows by parent: key `<parent exec id>.<child exec id>`. */
  children: StateBucket;
}

const decoder = new TextDecoder();
const log = getLogger(["engine", "state"]);

/** Task documents requested at once when an execution's tasks are read. */
const TASK_GETS_IN_FLIGHT = 32;

export class StateStore {
  constructor(
    private readonly buckets: StateBuckets,
    private readonly jsm: JetStreamManager,
  ) {}

  /**
   * Whether the task documents are replicated: there, nats-server 2.9 may accept two updates of one document
   * at the same revision (ended_tasks.ts), so a document this engine stored may have been overwritten since.
   */
  get replicated(): boolean {
    return (this.buckets.tasks.replicas ?? 1) > 1;
  }

  /** The whole state of an execution, its tasks in the order they were dispatched. */
  async get(execId: string): Promise<ExecutionState | undefined> {
    const doc = await this.getWorkflow(execId);
    return doc ? await this.withTasks(doc) : undefined;
  }

  async getWorkflow(execId: string): Promise<WorkflowDocument | undefined> {
    return (await this.getWorkflowWithRevision(execId)).doc;
  }

  /** The subject every write of the execution's document is published on (see end_watch.ts). */
  workflowSubject(execId: string): string {
    return `$KV.${this.buckets.workflows.name}.${execId}`;
  }

  async getWorkflowWithRevision(execId: string): Promise<{ doc?: WorkflowDocument; revision: number }> {
    const entry = await this.buckets.workflows.kv.get(execId);
    if (!entry || entry.operation !== "PUT") return { revision: entry?.revision ?? 0 };
    return { doc: entry.json<WorkflowDocument>(), revision: entry.revision };
  }

  async getTaskWithRevision(key: string): Promise<{ doc?: TaskExecutionState; revision: number }> {
    const entry = await this.buckets.tasks.kv.get(key);
    if (!entry || entry.operation !== "PUT") return { revision: entry?.revision ?? 0 };
    return { doc: entry.json<TaskExecutionState>(), revision: entry.revision };
  }

  /**
   * The revision of a stored document (0 when there is none), its JSON left unread: a 10,000-item
   * collection's execution document is 49 KB to parse for a number (issue 11).
   */
  async revisionOf(bucket: "workflows" | "tasks", key: string): Promise<number> {
    return (await this.buckets[bucket].kv.get(key))?.revision ?? 0;
  }

  /**
   * Writes with optimistic concurrency: throws when someone else wrote since `revision`. An execution's
   * first document is indexed under its status, and a sub-workflow's under its parent, before it is written.
   */
  async putWorkflow(doc: WorkflowDocument, revision: number): Promise<number> {
    if (revision === 0) {
      if (doc.parent) await this.indexChild(doc.parent.exec_id, doc.exec_id);
      doc.index_seq = await this.indexStatus(doc);
    }
    return await put(this.buckets.workflows.kv, doc.exec_id, doc, revision);
  }

  putTask(key: string, doc: TaskExecutionState, revision: number): Promise<number> {
    return put(this.buckets.tasks.kv, key, doc, revision);
  }

  /** Joins an execution's document with its task documents. */
  async withTasks(doc: WorkflowDocument): Promise<ExecutionState> {
    return this.joined(doc, await this.tasksOf(doc));
  }

  /** The subjects of an execution's task documents, up to the task's execution id (see task_watch.ts). */
  taskSubjectPrefix(execId: string): string {
    return `$KV.${this.buckets.tasks.name}.${execId}.`;
  }

  /** Joins an execution's document with task documents already at hand (see task_watch.ts). */
  joined(doc: WorkflowDocument, taskDocs: TaskDocument[]): ExecutionState {
    const {
      waiting: _waiting,
      wait_seq: _waitSeq,
      index_seq: _indexSeq,
      task_ids: _taskIds,
      lease: _lease,
      ...rest
    } = doc;
    const tasks = sortedByDispatch(taskDocs.map(({ seq: _seq, lease: _taskLease, ...task }) => task));
    // A finished execution's unfinished tasks will never finish: say so rather than leave them RUNNING.
    if (isTerminal(doc.status)) {
      for (const task of tasks) if (!isTerminal(task.status)) task.status = "CANCELED";
    }
    const usage = executionUsage(tasks);
    return usage ? { ...rest, tasks, usage } : { ...rest, tasks };
  }

  /**
   * The task documents of an execution, each read by its key (`<exec id>.<task exec id>`), a few at a time:
   * by direct gets on a bucket of one replica, else from the stream leader (a follower may lag).
   */
  private async tasksOf(doc: WorkflowDocument): Promise<TaskDocument[]> {
    const stream = `KV_${this.buckets.tasks.name}`;
    const prefix = this.taskSubjectPrefix(doc.exec_id);
    const subjects = doc.task_ids?.map((id) => prefix + id) ?? await this.taskSubjects(stream, prefix);
    // A few gets in flight at a time: a collection of 10,000 items would queue 10,000 at once, and the
    // JetStream API of nats-server answers them one after another past the request time-out.
    const stored: Array<StoredMsg | null> = [];
    for (let i = 0; i < subjects.length; i += TASK_GETS_IN_FLIGHT) {
      stored.push(
        ...await Promise.all(
          subjects.slice(i, i + TASK_GETS_IN_FLIGHT).map((subject) =>
            this.buckets.tasks.direct
              ? this.jsm.direct.getMessage(stream, { last_by_subj: subject })
              : this.jsm.streams.getMessage(stream, { last_by_subj: subject })
          ),
        ),
      );
    }
    const tasks: TaskDocument[] = [];
    for (const msg of stored) {
      const operation = msg?.header?.get("KV-Operation");
      if (!msg || operation === "DEL" || operation === "PURGE" || msg.data.byteLength === 0) continue;
      tasks.push(JSON.parse(decoder.decode(msg.data)) as TaskDocument);
    }
    return tasks;
  }

  /**
   * The task subjects of an execution that does not list its tasks (see WorkflowDocument.task_ids), from
   * the bucket's subject index: server memory, no message read, but a walk over every stored task subject
   * on nats-server 2.9 (a walk of the stream would read every message, a consumer would be created and
   * deleted per call).
   */
  private async taskSubjects(stream: string, prefix: string): Promise<string[]> {
    const info = await this.jsm.streams.info(stream, { subjects_filter: `${prefix}*` });
    return Object.keys(info.state.subjects ?? {});
  }

  /**
   * Every execution id, oldest first (UUIDv7 ids sort by time). Read from the bucket's stream info rather
   * than `kv.keys()`, whose iterator was seen to wait for ever when keys are written while it runs.
   */
  async ids(): Promise<string[]> {
    const name = this.buckets.workflows.name;
    const prefix = `$KV.${name}.`;
    const info = await this.jsm.streams.info(`KV_${name}`, { subjects_filter: `${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length)).sort();
  }

  /**
   * Execution ids by workflow and status (either may be left out), oldest first, from the index the state
   * manager keeps (see indexStatus): the subjects of the index's stream matching the filter, not every
   * stored execution. The index may briefly list an execution under its previous status too: callers
   * check the document.
   */
  async idsBy(workflowId?: string, status?: string): Promise<string[]> {
    // A value that is not one subject token (a dot, a wildcard) names no indexed execution.
    if ([workflowId, status].some((v) => v !== undefined && !/^[A-Za-z0-9_-]+$/.test(v))) return [];
    const name = this.buckets.index.name;
    const filter = `$KV.${name}.${workflowId ?? "*"}.${status ?? "*"}.*`;
    const info = await this.jsm.streams.info(`KV_${name}`, { subjects_filter: filter });
    const ids = Object.keys(info.state.subjects ?? {}).map((s) => s.slice(s.lastIndexOf(".") + 1));
    return [...new Set(ids)].sort();
  }

  /**
   * Adds the index entry of an execution's new status (before its document is written). Returns the entry's
   * stream sequence: the document keeps it (`index_seq`), so leaving the status deletes that one message.
   */
  async indexStatus(doc: WorkflowDocument): Promise<number> {
    return await this.buckets.index.kv.put(
      `${doc.workflow_id}.${doc.status}.${doc.exec_id}`,
      new Uint8Array(),
    );
  }

  /**
   * Removes the index entry of a status the execution left (after its document is written): the message
   * `index_seq` names, deleted by sequence. A purge by subject filter made nats-server 2.9 walk every stored
   * index entry at each status change, so each workflow cost more than the one before (issue 11). An entry
   * written again since (a refused first write indexes too) or a document older than `index_seq` is found
   * by its exact subject, and removed only if it is older than `listedAt`, the entry of the status the
   * execution moved to: a newer one was written after that move, by a folder that moved the execution back
   * to this status (two engines fold for a moment at a state folder's hand-over), and it lists the
   * execution as its document says.
   */
  async unindexStatus(doc: WorkflowDocument, listedAt: number): Promise<void> {
    const name = this.buckets.index.name;
    const key = `${doc.workflow_id}.${doc.status}.${doc.exec_id}`;
    await this.removeEntry(name, key, { seq: doc.index_seq, olderThan: listedAt });
  }

  /**
   * Removes a key of an index bucket with no marker left behind (a delete marker would stay listed for
   * ever): the message at `at.seq` when it is still there, else the key's last message, found by its exact
   * subject, when it is older than `at.olderThan`. Never a purge by subject filter, which nats-server 2.9
   * answers by walking every stored subject.
   */
  private async removeEntry(
    bucket: string,
    key: string,
    at: { seq?: number; olderThan?: number } = {},
  ): Promise<void> {
    const stream = `KV_${bucket}`;
    if (at.seq !== undefined && await deleteStoredMessage(this.jsm, stream, at.seq)) return;
    const stored = await this.jsm.streams.getMessage(stream, { last_by_subj: `$KV.${bucket}.${key}` });
    if (!stored || (at.olderThan !== undefined && stored.seq >= at.olderThan)) return;
    await deleteStoredMessage(this.jsm, stream, stored.seq);
  }

  /**
   * The running sub-workflows of an execution, found through the index of children (an entry is added
   * before a child's first document is written and removed after its last, so none is missed).
   */
  async findChildren(parentExecId: string): Promise<WorkflowDocument[]> {
    const name = this.buckets.children.name;
    const prefix = `$KV.${name}.${parentExecId}.`;
    const info = await this.jsm.streams.info(`KV_${name}`, { subjects_filter: `${prefix}*` });
    const out: WorkflowDocument[] = [];
    for (const subject of Object.keys(info.state.subjects ?? {}).sort()) {
      const doc = await this.getWorkflow(subject.slice(prefix.length));
      if (doc?.parent?.exec_id === parentExecId && !isTerminal(doc.status)) out.push(doc);
    }
    return out;
  }

  /** Adds a child to the index of its parent's children (before its document is first written). */
  async indexChild(parentExecId: string, childExecId: string): Promise<void> {
    await this.buckets.children.kv.put(`${parentExecId}.${childExecId}`, new Uint8Array());
  }

  /** Removes an ended child from the index (see removeEntry). */
  async unindexChild(parentExecId: string, childExecId: string): Promise<void> {
    await this.removeEntry(this.buckets.children.name, `${parentExecId}.${childExecId}`);
  }

  /**
   * Executions with a task waiting for `signalId`, found through the index of waits and confirmed by their
   * documents (the index may hold a wait that just ended; it never misses one, see indexWaits).
   */
  async findWaiting(signalId: string): Promise<WorkflowDocument[]> {
    const name = this.buckets.waiting.name;
    const prefix = `$KV.${name}.${signalId}.`;
    const info = await this.jsm.streams.info(`KV_${name}`, { subjects_filter: `${prefix}*` });
    const out: WorkflowDocument[] = [];
    for (const subject of Object.keys(info.state.subjects ?? {}).sort()) {
      const doc = await this.getWorkflow(subject.slice(prefix.length));
      if (doc && Object.values(doc.waiting ?? {}).includes(signalId)) out.push(doc);
    }
    return out;
  }

  /** Adds index entries for the signals `doc` waits for (before the document is written). */
  async indexWaits(execId: string, signals: Iterable<string>): Promise<void> {
    for (const signal of signals) await this.buckets.waiting.kv.put(`${signal}.${execId}`, new Uint8Array());
  }

  /**
   * The index entries of `signals` for `execId` as they are stored now (their stream sequences): read before
   * the document that no longer waits for them is written, and removed after it (unindexWaits).
   */
  async waitEntries(execId: string, signals: Iterable<string>): Promise<WaitEntry[]> {
    const name = this.buckets.waiting.name;
    const entries: WaitEntry[] = [];
    for (const signal of signals) {
      const stored = await this.jsm.streams.getMessage(`KV_${name}`, {
        last_by_subj: `$KV.${name}.${signal}.${execId}`,
      });
      if (stored) entries.push({ signal, execId, seq: stored.seq });
    }
    return entries;
  }

  /**
   * Removes index entries read by waitEntries before the document was written, by their sequence only: an
   * entry written again since is a newer message and stays. It was the key's last message, read after the
   * write: while two engines fold for a moment (a state folder's hand-over), that could be the entry the other
   * had just written for a new wait of the same signal, and a broadcast missed that wait for good.
   */
  async unindexWaits(entries: Iterable<WaitEntry>): Promise<void> {
    const stream = `KV_${this.buckets.waiting.name}`;
    for (const { signal, execId, seq } of entries) {
      // An entry left behind is harmless (findWaiting confirms each by its document): logged, not thrown.
      await deleteStoredMessage(this.jsm, stream, seq).catch((e) =>
        log.debug("wait index entry {signal}.{execId} not removed: {error}", {
          signal,
          execId,
          error: String(e),
        })
      );
    }
  }
}

/** An entry of the index of waits: its key's parts and its stream sequence. */
export interface WaitEntry {
  signal: string;
  execId: string;
  seq: number;
}

/** Deletes one stored message; false when it is gone already (its key was written again, or deleted). */
async function deleteStoredMessage(jsm: JetStreamManager, stream: string, seq: number): Promise<boolean> {
  try {
    return await jsm.streams.deleteMessage(stream, seq, false);
  } catch (e) {
    if (e instanceof JetStreamApiError && /no message found|sequence \d+ not found/i.test(e.message)) {
      return false;
    }
    throw e;
  }
}

function put(kv: KV, key: string, value: unknown, revision: number): Promise<number> {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return revision === 0 ? kv.create(key, bytes) : kv.update(key, bytes, revision);
}

/** Task execution ids are UUIDv7: their order is the order of dispatch. */
function sortedByDispatch(tasks: TaskExecutionState[]): TaskExecutionState[] {
  return tasks.sort((a, b) => a.exec_id < b.exec_id ? -1 : a.exec_id > b.exec_id ? 1 : 0);
}
