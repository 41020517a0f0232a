/**
 * Shapes of tasks, one schema per `type`. A task's `type` picks its schema (missing means `basic`), so a
 * mistake is reported at the field, not as "matches none of nine task shapes".
 *
 * @module
 */

import { z } from "zod";
import { durationField, envField, idField, templatedValue } from "../config_fields.ts";

export const TASK_TYPES = [
  "basic",
  "router",
  "parallel",
  "collection",
  "composite",
  "aggregate",
  "wait",
  "signal",
  "sleep",
] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** `use:` forms; the loader resolves them, the schema only checks the shape. */
export const USE_PATTERN = "^((tool|agent)\\((id|file)=[^()\\s]+\\)|workflow\\(id=[^()\\s]+\\))$";

/**
 * A boolean field given as a string (`if`, `filter`, a wait's `condition`) is a template or the word `true` or
 * `false`: any other literal ("yes", "nope") failed every run (`if`, `filter`: template_error) or, in a wait's
 * condition, refused every signal, so the wait waited for ever (outside review brk-eng3 E5).
 */
export const CONDITION_PATTERN = "^(true|false)$|\\{\\{";

/** `items` given as a string is a template (a literal string failed every run `items_not_list`). */
export const ITEMS_TEMPLATE_PATTERN = "\\{\\{";

/**
 * Most attempts a `retry` may make. Inngest caps retries at 20 and Temporal users rarely go past a few dozen;
 * 100 covers flaky calls retried over hours while a typo of 1e9 (at a 1 ms back-off, billions of history
 * events) is refused at load.
 */
export const MAX_ATTEMPTS = 100;

const next = (what: string) =>
  z.strictObject({ next: idField(`Id of the task to run ${what}`) }).describe(`Where to go ${what}`);

const commonFields = {
  id: idField("Task id, unique in the workflow (inline children included)"),
  with: z.record(z.string(), templatedValue()).describe("Input of the task; strings may be templates").meta({
    examples: [{ city: "{{ .workflow.input.city }}" }],
  }).optional(),
  env: envField().optional(),
  timeout: durationField("Time limit of one attempt").optional(),
  retry: z.strictObject({
    max_attempts: z.number().int().min(1).max(MAX_ATTEMPTS).describe(
      `Attempts in all, the first included; at most ${MAX_ATTEMPTS}`,
    ),
    backoff: z.strictObject({
      initial: durationField("Delay before the second attempt", { zero: true }).optional(),
      max: durationField("Longest delay between attempts", { zero: true }).optional(),
      // Bounded so that the delay stays a number: 0 × .inf is NaN (a YAML `.inf` is a number).
      factor: z.number().min(1).max(100).describe("Growth of the delay per attempt, 1 to 100").optional(),
    }).describe("Delays between attempts").optional(),
  }).describe("Retries on failure; without it a task makes one attempt").meta({
    examples: [{ max_attempts: 3, backoff: { initial: "1s", max: "30s", factor: 2 } }],
  }).optional(),
  on_success: next("after this task succeeds").optional(),
  on_error: next("when this task fails after its attempts").optional(),
  final: z.boolean().describe("Ends the workflow when this task succeeds").optional(),
  if: z.union([z.string().regex(new RegExp(CONDITION_PATTERN)), z.boolean()]).describe(
    "Skip the task (status SKIPPED) when this renders false",
  )
    .meta({
      examples: ["{{ .workflow.input.notify }}"],
    }).optional(),
  outputs: z.record(z.string(), templatedValue()).describe(
    "Reshapes the task's result; there `.output` is the raw result",
  ).optional(),
};

/** A task id, or a task declared in place. */
const taskOrId = () => z.union([idField("Id of a task in this workflow"), TaskSchema]);

const taskType = <T extends TaskType>(type: T) => z.literal(type).describe("Task type");

export const BasicTaskSchema = z.strictObject({
  ...commonFields,
  type: taskType("basic").default("basic"),
  use: z.string().regex(new RegExp(USE_PATTERN)).describe(
    "What to run: tool(id=X), agent(id=X), workflow(id=X), tool(file=./x.yaml) or agent(file=./x.yaml)",
  ).meta({ examples: ["tool(id=weather_tool)", "agent(id=forecaster)", "workflow(id=notify)"] }),
  action: idField("Action of the agent to run (agents only)").optional(),
}).describe("Runs one tool, agent action or sub-workflow").meta({ id: "task_basic" });

export const RouterTaskSchema = z.strictObject({
  ...commonFields,
  type: taskType("router"),
  condition: z.union([z.string(), z.number(), z.boolean()]).describe(
    "The value to route on; usually a template",
  ).meta({ examples: ["{{ .tasks.classify.output.kind }}"] }),
  get routes() {
    return z.record(z.string(), taskOrId()).describe("Rendered value -> task id or inline task");
  },
  get default() {
    return taskOrId().describe("Where to go when no route matches; without it the router fails").optional();
  },
}).describe("Chooses the next task from a value").meta({ id: "task_router" });

const maxWorkers = z.number().int().min(1).describe("How many children run at once");

export const ParallelTaskSchema = z.strictObject({
  ...commonFields,
  type: taskType("parallel"),
  get tasks() {
    return z.array(TaskSchema).min(1).describe("Tasks run at once; the output is a map by child id");
  },
  strategy: z.enum(["wait_all", "fail_fast", "best_effort", "race"]).describe(
    "wait_all (default): all must succeed; fail_fast: stop at the first failure; best_effort: failures allowed; race: the first to finish wins",
  ).optional(),
  max_workers: maxWorkers.optional(),
}).describe("Runs its children at once").meta({ id: "task_parallel" });

export const CollectionTaskSchema = z.strictObject({
  ...commonFields,
  type: taskType("collection"),
  items: z.union([z.string().regex(new RegExp(ITEMS_TEMPLATE_PATTERN)), z.array(z.unknown())]).describe(
    "A list, or a template that renders to one",
  )
    .meta({
      examples: ["{{ .workflow.input.cities }}"],
    }),
  filter: z.string().regex(new RegExp(CONDITION_PATTERN)).describe(
    "Keep an item when this renders true (`.item`, `.index`)",
  ).optional(),
  mode: z.enum(["parallel", "sequential"]).describe("parallel (default) or sequential").optional(),
  max_workers: maxWorkers.optional(),
  batch: z.number().int().min(1).describe("Items per batch").optional(),
  get task() {
    return TaskSchema.describe("The task run for each item (`.item`, `.index`)");
  },
}).describe("Runs a task for each item; the output is the list of outputs in item order").meta({
  id: "task_collection",
});

export const CompositeTaskSchema = z.strictObject({
  ...commonFields,
  type: taskType("composite"),
  get tasks() {
    return z.array(TaskSchema).min(1).describe(
      "Tasks run in order as one step; the output is the last one's",
    );
  },
}).describe("Runs its children in order as one step").meta({ id: "task_composite" });

export const AggregateTaskSchema = z.strictObject({
  ...commonFields,
  type: taskType("aggregate"),
  outputs: z.record(z.string(), templatedValue()).describe("The task's output, rendered"),
}).describe("Builds an output from earlier results").meta({ id: "task_aggregate" });

export const WaitTaskSchema = z.strictObject({
  ...commonFields,
  type: taskType("wait"),
  signal: idField("Id of the signal to wait for"),
  condition: z.string().regex(new RegExp(CONDITION_PATTERN)).describe(
    "Accept a signal when this renders true (`.signal.payload`)",
  ).meta({
    examples: ["{{ .signal.payload.approved == true }}"],
  }).optional(),
  on_timeout: idField("Task to go to when `timeout` passes; without it the task fails").optional(),
}).describe("Waits durably for a matching signal; the output is its payload").meta({ id: "task_wait" });

export const SignalTaskSchema = z.strictObject({
  ...commonFields,
  type: taskType("signal"),
  signal: z.strictObject({
    id: idField("Signal id"),
    payload: templatedValue().describe("Payload; strings may be templates").optional(),
  }).describe("The signal to send"),
  target: z.string().describe("Execution id to signal (may be a template); default: every waiting execution")
    .optional(),
}).describe("Sends a signal").meta({ id: "task_signal" });

export const SleepTaskSchema = z.strictObject({
  ...commonFields,
  type: taskType("sleep"),
  duration: durationField("How long to sleep"),
}).describe("A durable timer").meta({ id: "task_sleep" });

/** Any task; `pkg/schemagen` turns this union into a dispatch on `type` in JSON Schema. */
export const TaskSchema: z.ZodType<TaskConfig, unknown> = z.discriminatedUnion("type", [
  BasicTaskSchema,
  RouterTaskSchema,
  ParallelTaskSchema,
  CollectionTaskSchema,
  CompositeTaskSchema,
  AggregateTaskSchema,
  WaitTaskSchema,
  SignalTaskSchema,
  SleepTaskSchema,
]).describe("A task; `type` (default basic) chooses its fields").meta({ id: "task" });

// The task types are written out because the schemas are recursive (TypeScript cannot infer a type from its
// own initializer). The annotation on `TaskSchema` checks that every schema's output (after the `basic` default) fits these types, and
// `SameKeys` below checks that no field is missing from them.

/** Fields every task type has. */
export type TaskCommon = Omit<z.infer<typeof BasicTaskSchema>, "type" | "use" | "action">;
/** A route target: a task id, or a task declared in place. */
export type TaskOrId = string | TaskConfig;
export type ParallelStrategy = "wait_all" | "fail_fast" | "best_effort" | "race";

export interface BasicTask extends TaskCommon {
  type: "basic";
  use: string;
  action?: string;
}
export interface RouterTask extends TaskCommon {
  type: "router";
  condition: string | number | boolean;
  routes: Record<string, TaskOrId>;
  default?: TaskOrId;
}
export interface ParallelTask extends TaskCommon {
  type: "parallel";
  tasks: TaskConfig[];
  strategy?: ParallelStrategy;
  max_workers?: number;
}
export interface CollectionTask extends TaskCommon {
  type: "collection";
  items: string | unknown[];
  filter?: string;
  mode?: "parallel" | "sequential";
  max_workers?: number;
  batch?: number;
  task: TaskConfig;
}
export interface CompositeTask extends TaskCommon {
  type: "composite";
  tasks: TaskConfig[];
}
export interface AggregateTask extends TaskCommon {
  type: "aggregate";
  outputs: Record<string, unknown>;
}
export type WaitTask = z.infer<typeof WaitTaskSchema>;
export type SignalTask = z.infer<typeof SignalTaskSchema>;
export type SleepTask = z.infer<typeof SleepTaskSchema>;

/** A loaded task: `type` is always set (a missing `type` was normalised to `basic`). */
export type TaskConfig =
  | BasicTask
  | RouterTask
  | ParallelTask
  | CollectionTask
  | CompositeTask
  | AggregateTask
  | WaitTask
  | SignalTask
  | SleepTask;

type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : never) : never;
const _sameKeys: [
  SameKeys<BasicTask, z.infer<typeof BasicTaskSchema>>,
  SameKeys<RouterTask, z.infer<typeof RouterTaskSchema>>,
  SameKeys<ParallelTask, z.infer<typeof ParallelTaskSchema>>,
  SameKeys<CollectionTask, z.infer<typeof CollectionTaskSchema>>,
  SameKeys<CompositeTask, z.infer<typeof CompositeTaskSchema>>,
  SameKeys<AggregateTask, z.infer<typeof AggregateTaskSchema>>,
] = [true, true, true, true, true, true];
