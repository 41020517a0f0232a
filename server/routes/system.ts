/**
 * Health, version, metrics, and the API's own description (`/openapi.json`, `/docs`).
 *
 * @module
 */
import { route, type RouteSpec } from "../route_spec.ts";
import { renderDocsPage } from "../docs_page.ts";
import { HealthResponse, VersionResponse } from "../schemas.ts";
import type { RouteContext } from "./context.ts";

export function systemRoutes(ctx: RouteContext, document: () => Record<string, unknown>): RouteSpec[] {
  return [
    route({
      method: "get",
      path: "/api/health",
      ignoresQuery: true,
      operationId: "getHealth",
      summary: "Readiness of NATS, the engine and the runtime",
      description: "200 only when every component answers; the body names each one.",
      tag: "system",
      auth: false,
      responses: {
        200: { description: "Every component is ready", schema: HealthResponse },
        503: { description: "A component is not ready", schema: HealthResponse },
      },
      handler: async (c) => {
        const report = await ctx.health.check();
        return c.json(report, report.status === "ok" ? 200 : 503);
      },
    }),
    route({
      method: "get",
      path: "/api/version",
      operationId: "getVersion",
      summary: "Version and build information",
      tag: "system",
      responses: { 200: { description: "Version", schema: VersionResponse } },
      handler: (c) =>
        c.json({
          version: ctx.version.version,
          commit: ctx.version.commit ?? null,
          built_at: ctx.version.builtAt ?? null,
          deno: Deno.version.deno,
          api: "v1",
        }),
    }),
    route({
      method: "get",
      path: "/api/metrics",
      ignoresQuery: true,
      operationId: "getMetrics",
      summary: "Prometheus metrics: executions by status, task latency, queue depth, HTTP requests",
      tag: "system",
      responses: { 200: { description: "Prometheus text format 0.0.4", contentType: "text/plain" } },
      handler: async (c) =>
        c.body(await ctx.metrics.render(), 200, {
          "content-type": "text/plain; version=0.0.4; charset=utf-8",
        }),
    }),
    route({
      method: "get",
      path: "/openapi.json",
      operationId: "getOpenApi",
      summary: "This API's OpenAPI 3.1 document",
      tag: "system",
      responses: { 200: { description: "OpenAPI 3.1 document", contentType: "application/json" } },
      handler: (c) => c.json(document()),
    }),
    route({
      method: "get",
      path: "/docs",
      operationId: "getDocs",
      summary: "The OpenAPI document as a page",
      tag: "system",
      responses: { 200: { description: "HTML page", contentType: "text/html" } },
      handler: (c) => c.html(renderDocsPage(document())),
    }),
  ];
}
