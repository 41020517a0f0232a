/**
 * JetStream provisioning: the command streams, EVENTS, LOGS, DLQ and the KV buckets. Idempotent: running it
 * again with the same settings changes nothing; limits given in the options are applied in place; a change
 * JetStream cannot make in place (the storage type) is an error that names the stream.
 *
 * What an operator changed on the server is kept unless the options say otherwise: a stream's max age and
 * size revert only to a value given in the options (defaults apply at creation), and replicas are never
 * lowered (raising them is an option; lowering them is a decision for the operator's own tools). Every
 * change made, and every difference kept, is described in the report so the caller can log it.
 */
import {
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { nanos, type NatsConnection } from "@nats-io/transport-node";

export type Storage = "file" | "memory";

export interface StreamSpec {
  name: string;
  subjects: string[];
  retention: "limits" | "workqueue";
  maxAgeMs: number;
}

export interface BucketSpec {
  name: string;
  /** Entries older than this disappear; 0 keeps them forever. */
  ttlMs: number;
  history: number;
  /**
   * A bound on the bucket's entries, for a bucket whose entries a client's traffic makes: once full, its
   * oldest entries go first (discard old; a bucket's default, discard new, would refuse every new entry
   * instead). Set when the bucket is created, and on one found without a bound; an operator's bound is kept.
   * A count, not bytes: nats-server reserves a stream's `max_bytes` from its storage at creation, and refuses
   * the stream where less is free.
   */
  maxEntries?: number;
}

export interface ProvisionOptions {
  storage?: Storage;
  /** Replicas of every stream and bucket, 1 to 5. Default: 1 for new ones; existing ones keep theirs. */
  replicas?: number;
  duplicateWindowMs?: number;
  /** Max ages by stream name; a stream not named gets its default at creation and keeps what it has after. */
  maxAgeMs?: Partial<Record<string, number>>;
  /** Max sizes in bytes by stream name (the oldest messages go first); default unlimited, as for max ages. */
  maxBytes?: Partial<Record<string, number>>;
  /** Overrides of the default TTLs by bucket name. */
  ttlMs?: Partial<Record<string, number>>;
}

export interface ProvisionReport {
  created: string[];
  updated: string[];
  unchanged: string[];
  /** One line per change made (`stream EVENTS: num_replicas 1 -> 3`) and per difference kept on purpose. */
  notes: string[];
}

/** Provisioning asked for what this NATS cannot do (e.g. R3 on a single server). */
export class ProvisionError extends Error {
  override name = "ProvisionError";
}

export const MAX_REPLICAS = 5;

const DAY = 86_400_000;

/** The asynchronous command types that live in JetStream (request/reply commands stay on core NATS). */
const WORKFLOW_STREAM_COMMANDS = ["execute", "cancel", "pause", "resume", "signal"];

export const STREAMS = {
  workflowCommands: "WORKFLOW_CMDS",
  taskCommands: "TASK_CMDS",
  events: "EVENTS",
  logs: "LOGS",
  deadLetters: "DLQ",
} as const;

export const BUCKETS = {
  workflowExecutions: "compozy_workflow_executions",
  taskExecutions: "compozy_task_executions",
  idempotency: "compozy_idempotency",
  schedules: "compozy_schedules",
  leases: "compozy_leases",
  waiting: "compozy_waiting",
  executionIndex: "compozy_execution_index",
  children: "compozy_children",
  agentMemory: "compozy_agent_memory",
  agentTurns: "compozy_agent_turns",
  droppedSignals: "compozy_dropped_signals",
} as const;

export const DEFAULT_STREAMS: StreamSpec[] = [
  {
    name: STREAMS.workflowCommands,
    subjects: WORKFLOW_STREAM_COMMANDS.map((t) => `compozy.*.workflow.cmds.*.${t}`),
    retention: "workqueue",
    maxAgeMs: 7 * DAY,
  },
  // Task timers (sleep, wait time-outs, retry back-off) are TaskResume commands held until due.
  {
    name: STREAMS.taskCommands,
    subjects: ["compozy.*.task.cmds.*.resume"],
    retention: "workqueue",
    maxAgeMs: 30 * DAY,
  },
  { name: STREAMS.events, subjects: ["compozy.*.*.evts.*.*"], retention: "limits", maxAgeMs: 30 * DAY },
  { name: STREAMS.logs, subjects: ["compozy.*.*.logs.*.*"], retention: "limits", maxAgeMs: 3 * DAY },
  { name: STREAMS.deadLetters, subjects: ["compozy.dlq.*.*"], retention: "limits", maxAgeMs: 30 * DAY },
];

export const DEFAULT_BUCKETS: BucketSpec[] = [
  { name: BUCKETS.workflowExecutions, ttlMs: 0, history: 1 },
  { name: BUCKETS.taskExecutions, ttlMs: 0, history: 1 },
  // Idempotency keys are kept 24 h (API.md).
  { name: BUCKETS.idempotency, ttlMs: DAY, history: 1 },
  { name: BUCKETS.schedules, ttlMs: 0, history: 1 },
  // Which engine drives an execution; an entry its owner stops refreshing (a crash) expires.
  { name: BUCKETS.leases, ttlMs: 15_000, history: 1 },
  // `<signal id>.<exec id>` for every execution waiting for a signal: broadcasts find them without a scan.
  { name: BUCKETS.waiting, ttlMs: 0, history: 1 },
  // `<workflow id>.<status>.<exec id>` for every execution: listing by workflow and status without a scan.
  { name: BUCKETS.executionIndex, ttlMs: 0, history: 1 },
  // `<parent exec id>.<child exec id>` for every running sub-workflow: a cancel finds them without a scan.
  { name: BUCKETS.children, ttlMs: 0, history: 1 },
  // An agent's conversation by key (pkg/runtime/agent_memory.ts); one not written for 30 days is forgotten.
  { name: BUCKETS.agentMemory, ttlMs: 30 * DAY, history: 1 },
  // `<task exec id>.<step>`: which runner of an agent task makes each turn (pkg/runtime/agent_turn_fence.ts);
  // only needed while a task runs and for its re-runs, whose history has the turns once they are replayed.
  { name: BUCKETS.agentTurns, ttlMs: DAY, history: 1 },
  // `<exec id>.<message id's hash>` for every signal message no wait of the execution took (engine/dropped_signals.ts):
  // a copy arriving later is dropped too. Kept 24 h, as idempotency keys are, and at most 2 million entries
  // (~140 bytes each on disk, about 280 MB): a client sending signals nobody waits for makes one entry each,
  // and unbounded they took JetStream's storage from the histories (eng45). Past that the oldest go first,
  // and a copy of one of those is taken as a first arrival, as after 24 h.
  { name: BUCKETS.droppedSignals, ttlMs: DAY, history: 1, maxEntries: 2_000_000 },
];

/** Creates or updates every stream and bucket; returns what it did by name. */
export async function provisionJetStream(
  nc: NatsConnection,
  options: ProvisionOptions = {},
  streams: StreamSpec[] = DEFAULT_STREAMS,
  buckets: BucketSpec[] = DEFAULT_BUCKETS,
): Promise<ProvisionReport> {
  assertReplicasPossible(nc, options.replicas);
  const jsm = await jetstreamManager(nc);
  const report: ProvisionReport = { created: [], updated: [], unchanged: [], notes: [] };
  const storage = options.storage === "memory" ? StorageType.Memory : StorageType.File;
  const duplicateWindow = nanos(options.duplicateWindowMs ?? 120_000);
  for (const spec of streams) {
    const existing = await streamInfo(jsm, spec.name);
    const maxAge = options.maxAgeMs?.[spec.name];
    const maxBytes = options.maxBytes?.[spec.name];
    const wanted: Partial<StreamConfig> & { name: string } = {
      name: spec.name,
      subjects: spec.subjects,
      retention: spec.retention === "workqueue" ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
      storage,
      duplicate_window: duplicateWindow,
      ...(!existing || maxAge !== undefined ? { max_age: nanos(maxAge ?? spec.maxAgeMs) } : {}),
      ...(!existing || maxBytes !== undefined ? { max_bytes: maxBytes ?? -1 } : {}),
      num_replicas: replicasFor(existing, options.replicas, `stream ${spec.name}`, report),
    };
    const outcome = await withClearErrors(
      options.replicas,
      `stream ${spec.name}`,
      () => ensureStream(jsm, existing, wanted, report),
    );
    report[outcome].push(spec.name);
  }
  const kvm = new Kvm(nc);
  for (const spec of buckets) {
    const ttl = options.ttlMs?.[spec.name] ?? spec.ttlMs;
    const existing = await streamInfo(jsm, `KV_${spec.name}`);
    const what = `KV bucket ${spec.name}`;
    const replicas = replicasFor(existing, options.replicas, what, report);
    if (!existing) {
      await withClearErrors(
        options.replicas,
        what,
        async () => {
          await kvm.create(spec.name, { history: spec.history, ttl, replicas, storage });
          if (spec.maxEntries !== undefined) {
            const created = (await jsm.streams.info(`KV_${spec.name}`)).config;
            await jsm.streams.update(created.name, {
              ...created,
              max_msgs: spec.maxEntries,
              discard: DiscardPolicy.Old,
            });
          }
        },
      );
      report.created.push(spec.name);
      continue;
    }
    const bounded = spec.maxEntries !== undefined;
    const wanted = {
      ...existing.config,
      max_age: nanos(ttl),
      num_replicas: replicas,
      max_msgs_per_subject: spec.history,
      ...(bounded && existing.config.max_msgs <= 0 ? { max_msgs: spec.maxEntries } : {}),
      ...(bounded ? { discard: DiscardPolicy.Old } : {}),
    };
    assertSameStorage(existing, storage, what);
    const changes = differences(existing.config, wanted);
    if (changes.length > 0) {
      report.notes.push(...changes.map((c) => `${what}: ${c}`));
      await withClearErrors(options.replicas, what, () => jsm.streams.update(existing.config.name, wanted));
      report.updated.push(spec.name);
    } else {
      report.unchanged.push(spec.name);
    }
  }
  return report;
}

/**
 * A stream's replicas: the configured number, except that an existing stream never goes lower (an operator
 * raised it, or another process was configured higher); without a configured number, what it has, or 1.
 */
function replicasFor(
  existing: StreamInfo | undefined,
  configured: number | undefined,
  what: string,
  report: ProvisionReport,
): number {
  const current = existing?.config.num_replicas;
  if (current === undefined) return configured ?? 1;
  if (configured === undefined) return current;
  if (configured < current) {
    report.notes.push(
      `${what}: keeping ${current} replicas although ${configured} are configured (provisioning never ` +
        `lowers replicas; lower them with the nats CLI if that is what you want)`,
    );
    return current;
  }
  return configured;
}

/** Refuses replicas JetStream cannot place, before anything is created: R>1 needs a cluster. */
function assertReplicasPossible(nc: NatsConnection, replicas: number | undefined): void {
  if (replicas === undefined) return;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
    throw new ProvisionError(`Invalid replicas ${replicas}: JetStream accepts 1 to ${MAX_REPLICAS}`);
  }
  if (replicas > 1 && !nc.info?.cluster) {
    throw new ProvisionError(
      `Cannot provision ${replicas} replicas: the NATS server ${nc.info?.server_name ?? ""} is a single ` +
        `node, not part of a cluster. Run a JetStream cluster of at least ${replicas} servers ` +
        `(docs/operations.md), or set replicas to 1.`,
    );
  }
}

/** JetStream's "insufficient resources" becomes a message that says how many servers are missing. */
async function withClearErrors<T>(
  replicas: number | undefined,
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (
      replicas && replicas > 1 && e instanceof Error &&
      /insufficient resources|no suitable peers/i.test(e.message)
    ) {
      throw new ProvisionError(
        `Cannot provision ${what} with ${replicas} replicas: the cluster has fewer than ${replicas} ` +
          `JetStream servers available (${e.message}).`,
        { cause: e },
      );
    }
    throw e;
  }
}

async function ensureStream(
  jsm: JetStreamManager,
  existing: StreamInfo | undefined,
  wanted: Partial<StreamConfig> & { name: string },
  report: ProvisionReport,
): Promise<"created" | "updated" | "unchanged"> {
  if (!existing) {
    await jsm.streams.add(wanted);
    return "created";
  }
  assertSameStorage(existing, wanted.storage!, `stream ${wanted.name}`);
  if (existing.config.retention !== wanted.retention) {
    throw new Error(
      `Cannot provision stream ${wanted.name}: it exists with retention '${existing.config.retention}' ` +
        `but '${wanted.retention}' is required; JetStream cannot change retention in place.`,
    );
  }
  const merged = { ...existing.config, ...wanted };
  const changes = differences(existing.config, merged);
  if (changes.length === 0) return "unchanged";
  report.notes.push(...changes.map((c) => `stream ${wanted.name}: ${c}`));
  await jsm.streams.update(wanted.name, merged);
  return "updated";
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (e) {
    if (e instanceof Error && /stream not found/i.test(e.message)) return undefined;
    throw e;
  }
}

function assertSameStorage(existing: StreamInfo, storage: string, what: string): void {
  if (existing.config.storage !== storage) {
    throw new Error(
      `Cannot provision ${what}: it exists with storage '${existing.config.storage}' but '${storage}' is ` +
        `required; JetStream cannot change storage in place. Delete it or keep the old setting.`,
    );
  }
}

const COMPARED: (keyof StreamConfig)[] = [
  "subjects",
  "max_age",
  "max_bytes",
  "duplicate_window",
  "num_replicas",
  "max_msgs_per_subject",
  "max_msgs",
  "discard",
];

/** Each compared setting that `wanted` changes, as `name old -> new`. */
function differences(current: StreamConfig, wanted: Partial<StreamConfig>): string[] {
  return COMPARED.flatMap((key) => {
    if (wanted[key] === undefined) return [];
    const before = JSON.stringify(normalise(current[key]));
    const after = JSON.stringify(normalise(wanted[key]));
    return before === after ? [] : [`${key} ${before} -> ${after}`];
  });
}

function normalise(value: unknown): unknown {
  return Array.isArray(value) ? [...value].sort() : value;
}
