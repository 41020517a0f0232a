/**
 * Task, agent and tool definitions (`/api/tasks`, `/api/agents`, `/api/tools`, each with `/{id}`).
 *
 * @module
 */
import { type DefinitionKind, findDefinition, listDefinitions } from "../definitions.ts";
import { route, type RouteSpec } from "../route_spec.ts";
import { DefinitionQuery, DefinitionResponse, ItemsResponse } from "../schemas.ts";
import type { RouteContext } from "./context.ts";

const KINDS: Array<{ kind: DefinitionKind; plural: string; title: string }> = [
  { kind: "task", plural: "tasks", title: "Task" },
  { kind: "agent", plural: "agents", title: "Agent" },
  { kind: "tool", plural: "tools", title: "Tool" },
];

export function definitionRoutes(ctx: RouteContext): RouteSpec[] {
  return KINDS.flatMap(({ kind, plural, title }) => [
    route({
      method: "get",
      path: `/api/${plural}`,
      operationId: `list${title}s`,
      summary: `List ${plural}, each with the workflow that declares it (null: project-wide)`,
      tag: "definitions",
      query: DefinitionQuery,
      responses: { 200: { description: `${title}s`, schema: ItemsResponse } },
      handler: (c, { query }) =>
        c.json({
          items: listDefinitions(ctx.project, kind).filter((d) =>
            query.workflow_id === undefined || d.workflow_id === query.workflow_id
          ),
          next_cursor: null,
        }),
    }),
    route({
      method: "get",
      path: `/api/${plural}/{id}`,
      operationId: `get${title}`,
      summary: `One ${kind}; \`?workflow_id=\` chooses when several workflows declare the id`,
      tag: "definitions",
      params: { id: `${title} id` },
      query: DefinitionQuery,
      responses: {
        200: { description: title, schema: DefinitionResponse },
        404: { description: `Unknown ${kind}` },
        409: { description: "Several workflows declare the id" },
      },
      handler: (c, { query }) =>
        c.json(findDefinition(ctx.project, kind, c.req.param("id")!, query.workflow_id)),
    }),
  ]);
}
