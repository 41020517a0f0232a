/**
 * `GET /api/logs?exec_id=`: the log records of an execution's run, from the LOGS stream.
 *
 * @module
 */
import { ApiError } from "../api_error.ts";
import { route, type RouteSpec } from "../route_spec.ts";
import { LogsQuery, LogsResponse } from "../schemas.ts";
import type { RouteContext } from "./context.ts";

export function logRoutes(ctx: RouteContext): RouteSpec[] {
  return [
    route({
      method: "get",
      path: "/api/logs",
      bus: true,
      operationId: "listLogs",
      summary: "Log records of an execution (and of its sub-workflows), in order, a page at a time",
      tag: "executions",
      query: LogsQuery,
      responses: {
        200: { description: "Log records", schema: LogsResponse },
        400: { description: "Missing or malformed exec_id, limit or cursor" },
        404: { description: "Unknown execution" },
        503: { description: "Logs are not available in this process" },
      },
      handler: async (c, { query }) => {
        const state = await ctx.client.get(query.exec_id);
        if (!state) {
          throw new ApiError(404, "execution_not_found", `Unknown execution '${query.exec_id}'`, [
            { exec_id: query.exec_id },
          ]);
        }
        if (!ctx.logs) {
          throw new ApiError(503, "logs_unavailable", "This server has no access to the LOGS stream");
        }
        const limit = query.limit ?? 500;
        const from = query.cursor === undefined ? undefined : Number(query.cursor);
        const page = await ctx.logs.logs(state.correlation_id, limit, from);
        // A sub-workflow shares its root's correlation id: keep only its own records then (a page may hold
        // fewer than `limit` of them; the cursor still moves past every record read).
        const own = state.correlation_id === state.exec_id
          ? page.records
          : page.records.filter((r) => r.exec_id === state.exec_id);
        return c.json({ items: own, next_cursor: page.next === null ? null : String(page.next) });
      },
    }),
  ];
}
