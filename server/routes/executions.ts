/**
 * Executions: list, state, history (and its live stream), control commands and signals.
 *
 * @module
 */
import type { Context } from "hono";
import { ApiError } from "../api_error.ts";
import { IDEMPOTENCY_HEADER, scopedIdempotencyKey } from "../idempotency.ts";
import { route, type RouteSpec } from "../route_spec.ts";
import {
  CancelBody,
  DEFINITION_ID_PATTERN,
  EventsQuery,
  EventsResponse,
  EXEC_ID_PATTERN,
  ExecIdResponse,
  ExecutionPageSchema,
  ExecutionStateSchema,
  ListExecutionsQuery,
  NoBody,
  SignalAcceptedResponse,
  SignalDeliveredResponse,
  SignalPayload,
  StartExecutionBody,
} from "../schemas.ts";
import { streamEvents } from "../sse.ts";
import { startExecution } from "../start_execution.ts";
import type { RouteContext } from "./context.ts";
import { getLogger } from "../../pkg/logger/mod.ts";
import { isTerminal } from "../../engine/state/execution_state.ts";

const log = getLogger(["server", "signals"]);

/**
 * How many of the execution's tasks wait for `signalId` as it is delivered; when none does, the log (the
 * dev log) says so, naming the execution, since the signal then changes nothing.
 */
async function waitsFor(ctx: RouteContext, execId: string, signalId: string): Promise<number> {
  const state = await ctx.client.get(execId);
  // An unknown or ended execution is refused by the delivery (404, 409): the log must not say it was sent
  // and woke nothing, as it once did for both ("it waits for no signal").
  if (!state || isTerminal(state.status)) return 0;
  const waits = state.tasks.filter((t) => t.status === "WAITING");
  const matching = waits.filter((t) => t.waiting_for === signalId).length;
  if (matching === 0) {
    const others = [...new Set(waits.map((t) => t.waiting_for).filter(Boolean))];
    log.info("signal {signal} to execution {execId} wakes nothing: no wait for it ({waitsFor})", {
      signal: signalId,
      execId,
      waitsFor: others.length
        ? `it waits for ${others.map((id) => `'${id}'`).join(", ")}`
        : "it waits for no signal",
    });
  }
  return matching;
}

/** The `exec_id` path parameter; an id that cannot exist (not a subject token) is simply unknown. */
function execIdParam(c: Context): string {
  const execId = c.req.param("exec_id") ?? "";
  if (!EXEC_ID_PATTERN.test(execId)) {
    throw new ApiError(404, "execution_not_found", `Unknown execution '${execId.slice(0, 200)}'`, [
      { exec_id: execId.slice(0, 200) },
    ]);
  }
  return execId;
}

function signalIdParam(c: Context): string {
  const signalId = c.req.param("signal_id") ?? "";
  if (!DEFINITION_ID_PATTERN.test(signalId)) {
    throw new ApiError(400, "validation_failed", `Invalid signal id '${signalId.slice(0, 200)}'`, [
      { path: "/signal_id", message: "must match [a-z0-9][a-z0-9_-]*" },
    ]);
  }
  return signalId;
}

const NOT_FOUND = { description: "Unknown execution" };
const CONFLICT = { description: "The execution's status does not allow it (e.g. it has ended)" };
const UNAVAILABLE = { description: "NATS or the engine is unavailable" };

export function executionRoutes(ctx: RouteContext): RouteSpec[] {
  const control = (
    action: "pause" | "resume",
    summary: string,
  ) =>
    route({
      method: "post",
      path: `/api/executions/{exec_id}/${action}`,
      bus: true,
      operationId: `${action}Execution`,
      summary,
      tag: "executions",
      params: { exec_id: "Execution id" },
      body: { schema: NoBody.optional(), description: "None (or `{}`)" },
      responses: {
        202: { description: "The command is recorded", schema: ExecIdResponse },
        400: { description: "A body with a field" },
        404: NOT_FOUND,
        409: CONFLICT,
        503: UNAVAILABLE,
      },
      handler: async (c) => {
        const execId = execIdParam(c);
        await ctx.client[action](execId);
        return c.json({ exec_id: execId }, 202);
      },
    });

  return [
    route({
      method: "get",
      path: "/api/executions",
      bus: true,
      operationId: "listExecutions",
      summary: "List executions, newest first, with cursor pagination",
      tag: "executions",
      query: ListExecutionsQuery,
      responses: {
        200: { description: "A page", schema: ExecutionPageSchema },
        400: { description: "Bad filter" },
      },
      handler: async (c, { query }) =>
        c.json(
          await ctx.client.list({
            workflowId: query.workflow_id,
            status: query.status,
            cursor: query.cursor,
            limit: query.limit ?? 50,
          }),
        ),
    }),
    route({
      method: "get",
      path: "/api/executions/{exec_id}",
      bus: true,
      operationId: "getExecution",
      summary: "An execution's state, with its tasks",
      tag: "executions",
      params: { exec_id: "Execution id" },
      responses: { 200: { description: "State", schema: ExecutionStateSchema }, 404: NOT_FOUND },
      handler: async (c) => {
        const execId = execIdParam(c);
        const state = await ctx.client.get(execId);
        if (!state) {
          throw new ApiError(404, "execution_not_found", `Unknown execution '${execId}'`, [{
            exec_id: execId,
          }]);
        }
        return c.json(state);
      },
    }),
    route({
      method: "get",
      path: "/api/executions/{exec_id}/events",
      bus: true,
      operationId: "getExecutionEvents",
      summary:
        "The execution's event history, a page at a time; with `Accept: text/event-stream`, a live stream",
      description: "JSON: `{events, next_cursor}`, at most `limit` events (default 1000, and fewer once a " +
        "page holds 4 MiB); pass `next_cursor` back as `?cursor=` until it is null. The stream replays the history, then follows it, and ends after the execution's " +
        "terminal event. Each SSE message has `id` = seq, `event` = type, `data` = the event. " +
        "`Last-Event-ID` resumes after that seq (a malformed one is a 400; one past the end still sees the " +
        "stream close at the execution's end). With `?deltas=true` the stream also carries the text of " +
        "running agents' model replies as it streams: `event: agent.delta` messages without an `id`, never " +
        "stored in the history (a reconnect does not replay them).",
      tag: "executions",
      query: EventsQuery,
      params: { exec_id: "Execution id" },
      headers: [{ name: "Last-Event-ID", description: "Resume a stream after this seq (digits only)" }],
      responses: {
        200: { description: "History (JSON) or stream (text/event-stream)", schema: EventsResponse },
        404: NOT_FOUND,
      },
      handler: async (c, { query }) => {
        const execId = execIdParam(c);
        if ((c.req.header("accept") ?? "").includes("text/event-stream")) {
          if (!await ctx.client.get(execId)) {
            throw new ApiError(404, "execution_not_found", `Unknown execution '${execId}'`, [{
              exec_id: execId,
            }]);
          }
          return streamEvents(c, ctx.client, execId, {
            deltas: query.deltas === "true",
            liveStreams: ctx.liveStreams,
          });
        }
        return c.json(await ctx.client.eventPage(execId, { cursor: query.cursor, limit: query.limit }));
      },
    }),
    route({
      method: "post",
      path: "/api/executions/{exec_id}/cancel",
      bus: true,
      operationId: "cancelExecution",
      summary: "Cancel an execution",
      tag: "executions",
      params: { exec_id: "Execution id" },
      body: { schema: CancelBody.optional(), description: '`{"reason": "..."}`, optional' },
      responses: {
        202: { description: "The command is recorded", schema: ExecIdResponse },
        404: NOT_FOUND,
        409: CONFLICT,
        503: UNAVAILABLE,
      },
      handler: async (c, { body }) => {
        const execId = execIdParam(c);
        await ctx.client.cancel(execId, body?.reason);
        return c.json({ exec_id: execId }, 202);
      },
    }),
    route({
      method: "post",
      path: "/api/executions/{exec_id}/rerun",
      bus: true,
      operationId: "rerunExecution",
      summary: "Start a new execution of the same workflow, with the same input or the one given",
      description: "The new execution's state names the first as `rerun_of`. Any execution may be re-run, " +
        "ended or not. A repeated `Idempotency-Key` (kept 24 h) answers 200 with the first re-run's id.",
      tag: "executions",
      params: { exec_id: "The execution to re-run" },
      headers: [{ name: IDEMPOTENCY_HEADER, description: "Deduplicates retried re-runs for 24 h" }],
      body: {
        schema: StartExecutionBody.optional(),
        description:
          '`{"input": {...}}`, optional; without it (or with `null`), the first execution\'s input',
      },
      responses: {
        202: { description: "Accepted", schema: ExecIdResponse },
        200: { description: "Repeated idempotency key: the first re-run's id", schema: ExecIdResponse },
        400: { description: "Malformed JSON, unknown field or bad header" },
        404: { description: "Unknown execution, or its workflow is no longer loaded" },
        422: { description: "The input fails the workflow's input schema; details list the fields" },
        503: UNAVAILABLE,
      },
      handler: async (c, { body }) => {
        const execId = execIdParam(c);
        const first = await ctx.client.get(execId);
        if (!first) {
          throw new ApiError(404, "execution_not_found", `Unknown execution '${execId}'`, [{
            exec_id: execId,
          }]);
        }
        // `"input": null` is no input, as on a start: the first's input, not `{}`.
        const input = body?.input ?? first.input;
        return startExecution(c, ctx, first.workflow_id, input ?? {}, {
          idempotencyKey: scopedIdempotencyKey(c, `rerun:${execId}`),
          source: "api",
          rerunOf: execId,
        });
      },
    }),
    control("pause", "Pause an execution (running tasks finish; no new task starts)"),
    control("resume", "Resume a paused execution"),
    route({
      method: "post",
      path: "/api/executions/{exec_id}/signals/{signal_id}",
      bus: true,
      operationId: "signalExecution",
      summary: "Deliver a signal to one execution; the body is the payload",
      tag: "signals",
      params: { exec_id: "Execution id", signal_id: "Signal id" },
      headers: [{
        name: IDEMPOTENCY_HEADER,
        description:
          "A retried delivery with the same key is one signal: a wait that took it does not take it again",
      }],
      body: { schema: SignalPayload, description: "Any JSON value; may be empty (null payload)" },
      responses: {
        202: { description: "The signal is recorded", schema: SignalAcceptedResponse },
        400: { description: "Malformed JSON or signal id" },
        404: NOT_FOUND,
        409: CONFLICT,
        503: UNAVAILABLE,
      },
      handler: async (c, { body }) => {
        const execId = execIdParam(c);
        const signalId = signalIdParam(c);
        const deliveryId = scopedIdempotencyKey(c, `signal:${execId}:${signalId}`);
        // Counted before delivery: once delivered, the wait it wakes may already be gone from the state.
        const waiting = await waitsFor(ctx, execId, signalId);
        await ctx.client.signal(execId, signalId, body ?? null, deliveryId);
        return c.json({ exec_id: execId, waiting }, 202);
      },
    }),
    route({
      method: "post",
      path: "/api/signals/{signal_id}",
      bus: true,
      operationId: "broadcastSignal",
      summary: "Deliver a signal to every execution waiting for it",
      tag: "signals",
      params: { signal_id: "Signal id" },
      headers: [{
        name: IDEMPOTENCY_HEADER,
        description: "A retried broadcast with the same key is one signal to each execution that took it",
      }],
      body: { schema: SignalPayload, description: "Any JSON value; may be empty (null payload)" },
      responses: {
        200: { description: "The executions it was delivered to", schema: SignalDeliveredResponse },
        400: { description: "Malformed JSON or signal id" },
        503: UNAVAILABLE,
      },
      handler: async (c, { body }) => {
        const signalId = signalIdParam(c);
        const deliveryId = scopedIdempotencyKey(c, `broadcast:${signalId}`);
        return c.json({ delivered_to: await ctx.client.broadcastSignal(signalId, body ?? null, deliveryId) });
      },
    }),
  ];
}
