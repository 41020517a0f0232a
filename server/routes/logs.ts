/**
 * `GET /api/logs?exec_id=`: the log records of an execution's run, from the LOGS stream.
 *
 * @module
 */
import { ApiError } from "../api_error.ts";
import type { LogRecord } from "../log_source.ts";
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
        // A sub-workflow shares its root's correlation id: keep only its own records and its descendants'
        // then, as a root's are all of the run (a page may hold fewer than `limit` of them; the cursor still
        // moves past every record read).
        const own = state.correlation_id === state.exec_id
          ? page.records
          : await recordsUnder(state.exec_id, page.records, (execId) => ctx.client.get(execId));
        return c.json({ items: own, next_cursor: page.next === null ? null : String(page.next) });
      },
    }),
  ];
}

/**
 * The records of `records` logged by execution `execId` or by one of its sub-workflows at any depth: an
 * execution is under `execId` when following its `parent` up reaches it. Each execution of the page is looked
 * up once.
 */
async function recordsUnder(
  execId: string,
  records: LogRecord[],
  stateOf: (execId: string) => Promise<{ parent?: { exec_id: string } | null } | undefined>,
): Promise<LogRecord[]> {
  const under = new Map<string, boolean>([[execId, true]]);
  const isUnder = async (id: string): Promise<boolean> => {
    const known = under.get(id);
    if (known !== undefined) return known;
    const parent = (await stateOf(id))?.parent?.exec_id;
    // Marked before the walk up, so a parent chain that loops (a corrupt document) ends.
    under.set(id, false);
    const answer = parent === undefined ? false : await isUnder(parent);
    under.set(id, answer);
    return answer;
  };
  const kept: LogRecord[] = [];
  for (const record of records) {
    if (record.exec_id !== null && await isUnder(record.exec_id)) kept.push(record);
  }
  return kept;
}
