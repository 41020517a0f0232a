/**
 * The values a task's templates see (CONFIG.md "Templates and expressions"): `.workflow`, `.tasks`, `.env`,
 * and, where they apply, `.input`, `.item`, `.index`, `.signal`, `.error`, `.output`.
 */
import { renderValue, type TemplateContext, TemplateError } from "../../../pkg/tplengine/mod.ts";
import { TaskFailure } from "../../failure.ts";

export interface TaskResultView {
  output: unknown;
  status: string;
  /** Set when the task failed (then `output` is null). */
  error?: { message: string; code: string };
}

/**
 * The task results one scope sees as `.tasks`: its own, over those of the scopes it is chained to. Each item
 * of a collection, each branch of a parallel and each composite has its own scope, so items running the same
 * tasks never read each other's results; `.tasks.X` resolves in the innermost scope that has X.
 */
export class ResultScope {
  private readonly own: Record<string, TaskResultView> = {};
  private cached?: { parentView?: Record<string, TaskResultView>; view: Record<string, TaskResultView> };

  constructor(readonly parent?: ResultScope) {}

  set(taskId: string, result: TaskResultView): void {
    this.own[taskId] = result;
    this.cached = undefined;
  }

  /**
   * Makes this scope's results visible in its parent: a composite's or a parallel's children are readable after
   * it (their ids are unique in the workflow). A collection's items never publish: which item would win?
   */
  publish(): void {
    for (const [id, result] of Object.entries(this.own)) this.parent?.set(id, result);
  }

  /** The flat `.tasks` object of this scope (rebuilt only when this scope or one it is chained to changed). */
  view(): Record<string, TaskResultView> {
    const parentView = this.parent?.view();
    if (this.cached && this.cached.parentView === parentView) return this.cached.view;
    const view = parentView ? { ...parentView, ...this.own } : { ...this.own };
    this.cached = { parentView, view };
    return view;
  }
}

export interface ScopeValues {
  item?: unknown;
  index?: number;
  input?: unknown;
  signal?: { payload: unknown };
  error?: { message: string; code: string };
  output?: unknown;
}

/**
 * Merges env layers, lowest precedence first: env file, process environment, project, workflow, task,
 * then the tool or agent. A layer's values may be templates; they see the layers below them.
 */
export function mergeEnv(
  layers: Array<Record<string, string> | undefined>,
  base: Omit<TemplateContext, "env">,
  below: Record<string, string> = {},
): Record<string, string> {
  let env = below;
  for (const layer of layers) {
    if (!layer) continue;
    const rendered = renderValue(layer, { ...base, env }) as Record<string, unknown>;
    env = { ...env };
    for (const [k, v] of Object.entries(rendered)) env[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return env;
}

/**
 * Renders a templated field; a template error becomes a non-retryable TaskFailure naming the task and the
 * field (the same input would fail the same way on every attempt).
 */
export function renderField(
  value: unknown,
  context: TemplateContext,
  taskId: string,
  field: string,
): unknown {
  try {
    return renderValue(value, context);
  } catch (e) {
    throw asTaskFailure(e, taskId, field);
  }
}

/** A template error of `field` (whose value path it carries) as the task's failure; anything else as it is. */
export function asTaskFailure(e: unknown, taskId: string, field: string): unknown {
  if (!(e instanceof TemplateError)) return e;
  const where = e.valuePath?.length ? `${field}.${e.valuePath.join(".")}` : field;
  return new TaskFailure({
    message: `task '${taskId}', field '${where}': ${e.message}`,
    code: "template_error",
    retryable: false,
    details: { task_id: taskId, field: where, ...(e.path ? { path: e.path } : {}) },
    cause: e,
  });
}

/**
 * Renders the workflow's own `outputs` (after its last task): a template error names the workflow and the field,
 * not the task that happened to run last (outside review D5), and carries no task id.
 */
export function renderWorkflowOutputs(value: unknown, context: TemplateContext, workflowId: string): unknown {
  try {
    return renderValue(value, context);
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    const where = e.valuePath?.length ? `outputs.${e.valuePath.join(".")}` : "outputs";
    throw new TaskFailure({
      message: `workflow '${workflowId}', field '${where}': ${e.message}`,
      code: "template_error",
      retryable: false,
      details: { workflow_id: workflowId, field: where, ...(e.path ? { path: e.path } : {}) },
      cause: e,
    });
  }
}

/**
 * Renders a task's `if`: it must render true or false (or the strings "true"/"false", docs/templates.md), so
 * that a count of 0 or an empty string does not silently stand for false. Anything else is a template_error.
 */
export function renderCondition(
  value: unknown,
  context: TemplateContext,
  taskId: string,
  field: string,
): boolean {
  const rendered = renderField(value, context, taskId, field);
  if (rendered === true || rendered === "true") return true;
  if (rendered === false || rendered === "false") return false;
  throw new TaskFailure({
    message: `task '${taskId}', field '${field}': must render true or false, got ${describe(rendered)}`,
    code: "template_error",
    retryable: false,
    details: { task_id: taskId, field },
  });
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
