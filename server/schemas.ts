/**
 * The schemas of the HTTP API. Request schemas validate what routes accept; together with the response
 * schemas they are also the source of `/openapi.json`, so the document cannot drift from the checks.
 *
 * @module
 */
import { z } from "zod";
import { DURATION_PATTERN, parseDuration } from "../engine/domain/duration.ts";
import { ID_PATTERN, MAX_ID_LENGTH } from "../engine/domain/ids.ts";
import { TASK_STATUSES, WORKFLOW_STATUSES } from "../engine/state/execution_state.ts";
import { EVENT_CURSOR_PATTERN, MAX_PAGE_EVENTS } from "../engine/history/event_page.ts";

/** Longest `?wait=` a start may ask for; a longer wait belongs to the events stream. */
export const MAX_WAIT_MS = 10 * 60_000;

/** An execution id as it may appear in a URL: a safe NATS subject token (UUIDv7 in practice). */
export const EXEC_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
/** A definition id (workflow, task, tool, agent, signal) as CONFIG.md allows them. */
export const DEFINITION_ID_PATTERN = new RegExp(ID_PATTERN);
/** `Idempotency-Key`: printable ASCII, no spaces, at most 200 characters. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** Whether a `?wait=` duration (one that matches the pattern) is at most MAX_WAIT_MS. */
function waitWithinBound(wait: string): boolean {
  try {
    return parseDuration(wait) <= MAX_WAIT_MS;
  } catch (error) {
    if (error instanceof RangeError) return false; // too long to be a number of milliseconds at all
    throw error;
  }
}

// ---- Requests ----

/**
 * A numeric query parameter: plain decimal digits only. `z.coerce.number()` took `0x10`, ` 2` and `1e1` as
 * 16, 2 and 10 (outside review api35). A preprocess, not a string schema: the OpenAPI document keeps
 * describing the parameter as an integer with its bounds.
 */
function queryInteger(min: number, max: number) {
  return z.preprocess((value, ctx) => {
    if (typeof value === "string" && /^[0-9]+$/.test(value)) return Number(value);
    ctx.addIssue({
      code: "custom",
      message: "expected a whole number written in decimal digits",
      input: value,
    });
    return z.NEVER;
  }, z.number().int().min(min).max(max));
}

export const StartExecutionBody = z.strictObject({
  input: z.unknown().describe(
    "The workflow's input; checked against its `config.input` schema. Absent or `null`: no input given",
  ).optional(),
}).describe("Starts an execution").meta({ examples: [{ input: { city: "Lisbon" } }] });

export const StartExecutionQuery = z.strictObject({
  wait: z.string().regex(new RegExp(DURATION_PATTERN), "expected a duration such as 500ms, 30s or 5m")
    // Checked here, not after parsing: `99999999999999999999s` passes the pattern and parses to no safe
    // number of milliseconds, which the handler's parse threw as a 500.
    .refine((wait) => !new RegExp(DURATION_PATTERN).test(wait) || waitWithinBound(wait), {
      message: `at most ${MAX_WAIT_MS / 60_000}m`,
    })
    .describe("Wait up to this long for the execution to end and answer with its state (at most 10m)")
    .optional(),
});

export const ListExecutionsQuery = z.strictObject({
  workflow_id: z.string().max(MAX_ID_LENGTH).regex(DEFINITION_ID_PATTERN, "not a workflow id").describe(
    "Only this workflow",
  )
    .optional(),
  status: z.enum(WORKFLOW_STATUSES).describe("Only executions in this status").optional(),
  // The cursor is the last execution id of the previous page: anything else is a client's mistake.
  cursor: z.string().regex(EXEC_ID_PATTERN, "not a cursor this API gave: pass `next_cursor` as it is")
    .describe("The `next_cursor` of the previous page").optional(),
  limit: queryInteger(1, 500).describe("Page size (default 50)").optional(),
});

export const EventsQuery = z.strictObject({
  cursor: z.string().regex(EVENT_CURSOR_PATTERN, "not a cursor this API gave: pass `next_cursor` as it is")
    .describe("JSON history only: the `next_cursor` of the previous page (default: from the start)")
    .optional(),
  limit: queryInteger(1, MAX_PAGE_EVENTS)
    .describe(`JSON history only: at most this many events (default 1000, at most ${MAX_PAGE_EVENTS})`)
    .optional(),
  deltas: z.enum(["true", "false"]).describe(
    "With `text/event-stream`: also stream agents' live text deltas (`agent.delta`, never stored; default false)",
  ).optional(),
});

/**
 * The body of a route that takes none (pause, resume): nothing or `{}`. A field was dropped without a word,
 * so `{"reason": "…"}` sent to pause looked recorded, where cancel refuses an unknown field.
 */
export const NoBody = z.strictObject({}).describe("No body, or `{}`");

export const CancelBody = z.strictObject({
  reason: z.string().max(1000).describe("Why; recorded in the execution's history").optional(),
}).describe("Optional cancellation reason");

/** A signal's payload is any JSON value (or nothing). */
export const SignalPayload = z.unknown().describe("The signal payload: any JSON value");

export const LogsQuery = z.strictObject({
  exec_id: z.string().regex(EXEC_ID_PATTERN, "not an execution id").describe("The execution"),
  limit: queryInteger(1, 5000).describe("At most this many records (default 500)")
    .optional(),
  cursor: z.string().regex(/^[1-9][0-9]{0,14}$/, "not a cursor this API gave: pass `next_cursor` as it is")
    .describe("The `next_cursor` of the previous page (default: from the first record)").optional(),
});

export const DefinitionQuery = z.strictObject({
  workflow_id: z.string().max(MAX_ID_LENGTH).regex(DEFINITION_ID_PATTERN, "not a workflow id")
    .describe("Disambiguates an id that several workflows declare").optional(),
});

/** The body of `POST /api/admin/deployments`: a bundle written by `compozy build`. */
export const BundleBody = z.strictObject({
  format: z.literal("compozy-bundle/1"),
  project: z.string().min(1),
  created_at: z.string(),
  files: z.record(z.string(), z.string()).describe("Project files by relative path"),
}).describe("A project bundle made by `compozy build`");

// ---- Responses ----

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string().meta({ examples: ["validation_failed"] }),
    message: z.string(),
    details: z.array(z.unknown()),
  }),
}).meta({ id: "Error" });

export const ExecIdResponse = z.object({ exec_id: z.string() }).meta({ id: "ExecutionAccepted" });

const ExecutionErrorSchema = z.object({
  message: z.string(),
  code: z.string(),
  details: z.unknown().optional(),
})
  .nullable();

const TokenUsageSchema = z.object({
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cost: z.number().optional().describe("From the models' `price`; absent when no model used had one"),
}).meta({ id: "TokenUsage" });

export const TaskStateSchema = z.object({
  task_id: z.string(),
  exec_id: z.string(),
  status: z.enum(TASK_STATUSES),
  output: z.unknown(),
  error: ExecutionErrorSchema,
  attempts: z.number().int(),
  started_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  usage: TokenUsageSchema.optional().describe("An agent task's tokens (and cost), failed attempts' included"),
}).meta({ id: "TaskState" });

export const ExecutionStateSchema = z.object({
  exec_id: z.string(),
  workflow_id: z.string(),
  status: z.enum(WORKFLOW_STATUSES),
  input: z.unknown(),
  output: z.unknown(),
  error: ExecutionErrorSchema,
  started_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  tasks: z.array(TaskStateSchema),
  rerun_of: z.string().nullable().optional().describe("The execution this one re-runs, if any"),
  usage: TokenUsageSchema.optional().describe(
    "The sum of its agent tasks' usage; absent without agent tasks",
  ),
}).meta({ id: "ExecutionState" });

export const ExecutionPageSchema = z.object({
  items: z.array(ExecutionStateSchema),
  next_cursor: z.string().nullable(),
}).meta({ id: "ExecutionPage" });

export const EventRecordSchema = z.object({
  seq: z.number().int(),
  subject: z.string(),
  type: z.string().meta({ examples: ["task.success"] }),
  time: z.string(),
  data: z.unknown(),
}).meta({ id: "Event" });

export const EventsResponse = z.object({
  events: z.array(EventRecordSchema),
  next_cursor: z.string().nullable().describe(
    "Pass as `?cursor=` for the next page; null when no more events are stored yet (a running execution " +
      "records more: ask again with the last cursor you had, or follow the stream)",
  ),
}).meta({ id: "EventPage" });

export const SignalDeliveredResponse = z.object({
  delivered_to: z.array(z.string()).describe(
    "The executions the signal was sent to: those whose state showed a task waiting for it as the request " +
      "was read. Not a receipt: a wait ended by another signal first (even one sent a moment before) or " +
      "whose condition refuses the payload drops it; the history's `task.waiting_ended` says which took it.",
  ),
}).meta({ id: "SignalDelivered" });

/** `exec_id` as in ExecutionAccepted, plus how many of its waits were waiting for the signal. */
export const SignalAcceptedResponse = z.object({
  exec_id: z.string(),
  waiting: z.number().int().describe(
    "Tasks of the execution waiting for this signal when it was delivered; 0 means it wakes nothing. " +
      "A wait with a `condition` ends only if the condition accepts the payload.",
  ),
}).meta({ id: "SignalAccepted" });

export const ComponentHealth = z.object({
  status: z.enum(["ok", "unavailable"]),
  detail: z.union([z.string(), z.record(z.string(), z.unknown())]).describe(
    "A sentence, or the fields the part reported about itself (e.g. the runtime's pool figures)",
  ),
});
export const HealthResponse = z.object({
  status: z.enum(["ok", "unavailable"]),
  components: z.record(z.string(), ComponentHealth),
}).meta({ id: "Health" });

export const VersionResponse = z.object({
  version: z.string(),
  commit: z.string().nullable(),
  built_at: z.string().nullable(),
  deno: z.string(),
  api: z.string(),
});

/** A list of definitions: all of them in one page (`next_cursor` is always null), like every list's shape. */
export const ItemsResponse = z.object({
  items: z.array(z.record(z.string(), z.unknown())),
  next_cursor: z.null().describe("Definitions come in one page: always null"),
});
export const DefinitionResponse = z.record(z.string(), z.unknown());

export const LogRecordSchema = z.object({
  seq: z.number().int().describe("Its sequence in the log stream: an execution's records are in this order"),
  time: z.string(),
  level: z.string(),
  message: z.string(),
  category: z.string(),
  component: z.string(),
  fields: z.unknown(),
  workflow_id: z.string().nullable(),
  exec_id: z.string().nullable(),
  task_id: z.string().nullable(),
}).meta({ id: "LogRecord" });

export const LogsResponse = z.object({
  items: z.array(LogRecordSchema),
  next_cursor: z.string().nullable().describe(
    "Pass as `?cursor=` for the next page; null when no more records are stored yet",
  ),
});

export const DeploymentResponse = z.object({
  deployment: z.string().describe("SHA-256 of the bundle"),
  project: z.string(),
  workflows: z.array(z.string()),
});
