/**
 * Workflow definitions and starting executions.
 *
 * @module
 */
import { z } from "zod";
import { parseDuration } from "../../engine/domain/duration.ts";
import { ApiError } from "../api_error.ts";
import { workflowDetail, workflowSummary } from "../definitions.ts";
import { IDEMPOTENCY_HEADER, scopedIdempotencyKey } from "../idempotency.ts";
import { route, type RouteSpec } from "../route_spec.ts";
import {
  DefinitionResponse,
  ExecIdResponse,
  ExecutionStateSchema,
  ItemsResponse,
  StartExecutionBody,
  StartExecutionQuery,
} from "../schemas.ts";
import { startExecution } from "../start_execution.ts";
import type { RouteContext } from "./context.ts";

export function workflowRoutes(ctx: RouteContext): RouteSpec[] {
  const findWorkflow = (id: string) => {
    const workflow = ctx.project.workflows.get(id);
    if (!workflow) {
      throw new ApiError(404, "workflow_not_found", `Unknown workflow '${id}'`, [{ workflow_id: id }]);
    }
    return workflow;
  };
  return [
    route({
      method: "get",
      path: "/api/workflows",
      operationId: "listWorkflows",
      summary: "List workflow definitions",
      tag: "workflows",
      responses: { 200: { description: "Workflows", schema: ItemsResponse } },
      handler: (c) =>
        c.json({
          items: [...ctx.project.workflows.values()].map((w) => workflowSummary(ctx.project, w)),
          next_cursor: null,
        }),
    }),
    route({
      method: "get",
      path: "/api/workflows/{workflow_id}",
      operationId: "getWorkflow",
      summary: "One workflow definition, as loaded, with its input schema",
      tag: "workflows",
      params: { workflow_id: "Workflow id" },
      responses: {
        200: { description: "The definition", schema: DefinitionResponse },
        404: { description: "Unknown workflow" },
      },
      handler: (c) => c.json(workflowDetail(ctx.project, findWorkflow(c.req.param("workflow_id")!))),
    }),
    route({
      method: "post",
      path: "/api/workflows/{workflow_id}/executions",
      bus: true,
      operationId: "startExecution",
      summary: "Start an execution",
      description:
        "With `?wait=30s`, waits for the end and answers 200 with the state, whatever its outcome " +
        "(or the state at the end of the wait). A repeated `Idempotency-Key` (kept 24 h) answers 200 with the " +
        "first execution's id.",
      tag: "executions",
      params: { workflow_id: "Workflow id" },
      query: StartExecutionQuery,
      headers: [{ name: IDEMPOTENCY_HEADER, description: "Deduplicates retried starts for 24 h" }],
      body: {
        schema: StartExecutionBody.optional(),
        description: '`{"input": {...}}`; may be empty (no input, or `null`, is `{}`)',
      },
      responses: {
        202: { description: "Accepted", schema: ExecIdResponse },
        200: {
          description: "Repeated idempotency key (the first exec_id), or the state after `?wait=`",
          schema: z.union([ExecIdResponse, ExecutionStateSchema]),
        },
        400: { description: "Malformed JSON, wrong content type, unknown field or bad header" },
        404: { description: "Unknown workflow" },
        413: { description: "Body too large" },
        422: { description: "The input fails the workflow's input schema; details list the fields" },
        503: { description: "NATS or the engine is unavailable" },
      },
      handler: (c, { query, body }) => {
        const workflowId = c.req.param("workflow_id")!;
        // The query schema bounds `wait` (at most MAX_WAIT_MS): it parses.
        const waitMs = query.wait === undefined ? undefined : parseDuration(query.wait);
        return startExecution(c, ctx, workflowId, body?.input ?? {}, {
          idempotencyKey: scopedIdempotencyKey(c, `api:${workflowId}`),
          source: "api",
          waitMs,
        });
      },
    }),
  ];
}
