/**
 * JetStream provisioning: the command streams, EVENTS, LOGS, DLQ and the KV buckets. Idempotent: running it
 * again with the same settings changes nothing; changed limits are applied in place; a change JetStream
 * cannot make in place (the storage type) is an error that names the stream.
 */
import {
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
}

export interface ProvisionOptions {
  storage?: Storage;
  replicas?: number;
  duplicateWindowMs?: number;
  /** Overrides of the default max ages by stream name. */
  maxAgeMs?: Partial<Record<string, number>>;
  /** Overrides of the default TTLs by bucket name. */
  ttlMs?: Partial<Record<string, number>>;
}

export interface ProvisionReport {
  created: string[];
  updated: string[];
  unchanged: string[];
}

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
  children: "compozy_children",
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
  // `<parent exec id>.<child exec id>` for every running sub-workflow: a cancel finds them without a scan.
  { name: BUCKETS.children, ttlMs: 0, history: 1 },
];

/** Creates or updates every stream and bucket; returns what it did by name. */
export async function provisionJetStream(
  nc: NatsConnection,
  options: ProvisionOptions = {},
  streams: StreamSpec[] = DEFAULT_STREAMS,
  buckets: BucketSpec[] = DEFAULT_BUCKETS,
): Promise<ProvisionReport> {
  const jsm = await jetstreamManager(nc);
  const report: ProvisionReport = { created: [], updated: [], unchanged: [] };
  const storage = options.storage === "memory" ? StorageType.Memory : StorageType.File;
  const replicas = options.replicas ?? 1;
  const duplicateWindow = nanos(options.duplicateWindowMs ?? 120_000);
  for (const spec of streams) {
    const wanted: Partial<StreamConfig> & { name: string } = {
      name: spec.name,
      subjects: spec.subjects,
      retention: spec.retention === "workqueue" ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
      storage,
      num_replicas: replicas,
      max_age: nanos(options.maxAgeMs?.[spec.name] ?? spec.maxAgeMs),
      duplicate_window: duplicateWindow,
    };
    report[await ensureStream(jsm, wanted)].push(spec.name);
  }
  const kvm = new Kvm(nc);
  for (const spec of buckets) {
    const ttl = options.ttlMs?.[spec.name] ?? spec.ttlMs;
    const existing = await streamInfo(jsm, `KV_${spec.name}`);
    if (!existing) {
      await kvm.create(spec.name, { history: spec.history, ttl, replicas, storage });
      report.created.push(spec.name);
      continue;
    }
    const wanted = {
      ...existing.config,
      max_age: nanos(ttl),
      num_replicas: replicas,
      max_msgs_per_subject: spec.history,
    };
    assertSameStorage(existing, storage, `KV bucket ${spec.name}`);
    if (differs(existing.config, wanted)) {
      await jsm.streams.update(existing.config.name, wanted);
      report.updated.push(spec.name);
    } else {
      report.unchanged.push(spec.name);
    }
  }
  return report;
}

async function ensureStream(
  jsm: JetStreamManager,
  wanted: Partial<StreamConfig> & { name: string },
): Promise<"created" | "updated" | "unchanged"> {
  const existing = await streamInfo(jsm, wanted.name);
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
  if (!differs(existing.config, merged)) return "unchanged";
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
  "duplicate_window",
  "num_replicas",
  "max_msgs_per_subject",
];

function differs(current: StreamConfig, wanted: Partial<StreamConfig>): boolean {
  return COMPARED.some((key) =>
    wanted[key] !== undefined &&
    JSON.stringify(normalise(current[key])) !== JSON.stringify(normalise(wanted[key]))
  );
}

function normalise(value: unknown): unknown {
  return Array.isArray(value) ? [...value].sort() : value;
}
