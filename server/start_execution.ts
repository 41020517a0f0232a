/**
 * Starting an execution, shared by `POST /api/workflows/{id}/executions` and webhooks: the first start with a
 * key answers 202, a repeated key 200 with the first execution's id, and a start-and-wait 200 with the state.
 *
 * @module
 */
import type { Context } from "hono";
import type { TriggerOptions } from "../engine/client.ts";
import { ApiError } from "./api_error.ts";
import type { RouteContext } from "./routes/context.ts";

export interface StartOptions extends TriggerOptions {
  /** Wait up to this long for the end and answer with the state. */
  waitMs?: number;
}

export async function startExecution(
  c: Context,
  ctx: RouteContext,
  workflowId: string,
  input: unknown,
  options: StartOptions,
): Promise<Response> {
  if (!ctx.project.workflows.has(workflowId)) {
    throw new ApiError(404, "workflow_not_found", `Unknown workflow '${workflowId}'`, [{
      workflow_id: workflowId,
    }]);
  }
  const trigger = {
    idempotencyKey: options.idempotencyKey,
    source: options.source,
    rerunOf: options.rerunOf,
  };
  if (options.waitMs !== undefined) {
    const { execId, state } = await ctx.client.triggerAndWait(workflowId, input, trigger, options.waitMs);
    return c.json(state, 200, { location: `/api/executions/${execId}` });
  }
  const { execId, duplicate } = await ctx.client.trigger(workflowId, input, trigger);
  return c.json({ exec_id: execId }, duplicate ? 200 : 202, { location: `/api/executions/${execId}` });
}
