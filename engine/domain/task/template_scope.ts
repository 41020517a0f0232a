/**
 * The values a task's templates see (CONFIG.md "Templates and expressions"): `.workflow`, `.tasks`, `.env`,
 * and, where they apply, `.input`, `.item`, `.index`, `.signal`, `.error`, `.output`.
 */
import { renderValue, type TemplateContext, TemplateError } from "../../../pkg/tplengine/mod.ts";
import { TaskFailure } from "../../failure.ts";

export interface TaskResultView {
  output: unknown;
  status: string;
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
    if (e instanceof TemplateError) {
      const where = e.valuePath?.length ? `${field}.${e.valuePath.join(".")}` : field;
      throw new TaskFailure(`task '${taskId}', field '${where}': ${e.message}`, "template_error", false, {
        task_id: taskId,
        field: where,
        ...(e.path ? { path: e.path } : {}),
      }, { cause: e });
    }
    throw e;
  }
}
