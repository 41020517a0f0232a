/**
 * The HTTP API (API.md) as a Hono app. It holds no state of its own beyond metrics: executions live in the
 * engine (reached through the ExecutionClient), definitions in the loaded project.
 *
 * @example
 * ```ts ignore
 * const app = createApp({ client, project, version: { version: "0.1.0" }, health });
 * Deno.serve({ port: 3001 }, app.fetch);
 * ```
 *
 * @module
 */
import { Hono, type MiddlewareHandler } from "hono";
import type { ExecutionClient } from "../engine/client.ts";
import type { Project } from "../engine/domain/project/types.ts";
import { WebhookTable } from "../engine/triggers/webhook_table.ts";
import { getLogger } from "../pkg/logger/mod.ts";
import { allowedMethods } from "./allowed_methods.ts";
import { ApiError, toApiError } from "./api_error.ts";
import { apiKeyCheck } from "./auth.ts";
import type { HealthCheck } from "./health.ts";
import type { LogSource } from "./log_source.ts";
import { MetricsRegistry } from "./metrics.ts";
import { mountConsole } from "./console/mod.ts";
import { buildOpenApi } from "./openapi.ts";
import { DEFAULT_BODY_LIMIT_BYTES } from "./request_body.ts";
import { registerRoutes, type RouteSpec } from "./route_spec.ts";
import { LiveStreams } from "./sse.ts";
import { adminRoutes } from "./routes/admin.ts";
import type { DeployHandler, RouteContext, VersionInfo } from "./routes/context.ts";
import { definitionRoutes } from "./routes/definitions.ts";
import { executionRoutes } from "./routes/executions.ts";
import { logRoutes } from "./routes/logs.ts";
import { systemRoutes } from "./routes/system.ts";
import { webhookRoutes } from "./routes/webhooks.ts";
import { workflowRoutes } from "./routes/workflows.ts";

export interface AppOptions {
  client: ExecutionClient;
  project: Project;
  version: VersionInfo;
  health: HealthCheck;
  /** When set, every route but health and webhooks needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Shared across reloads so that counters survive them; default a new registry. */
  metrics?: MetricsRegistry;
  logs?: LogSource;
  /** Default: built from the project and the process environment. */
  webhooks?: WebhookTable;
  deploy?: DeployHandler;
  /**
   * The server listens on loopback only: without an API key, a request must then name a loopback host in
   * `Host`, so a web page that DNS-rebinds its name to 127.0.0.1 cannot drive the API from a browser.
   */
  loopbackOnly?: boolean;
  /** Default 1 MiB. */
  bodyLimitBytes?: number;
  /** How long a request body may take to arrive; default DEFAULT_BODY_TIMEOUT_MS (30 s). */
  bodyTimeoutMs?: number;
  /** Whether NATS is reachable now (see nats_link.ts); default always. */
  natsConnected?: () => boolean;
  /**
   * The open live event streams, for a server to end before its shutdown (which waits for them); shared
   * across reloads. Default a new registry.
   */
  liveStreams?: LiveStreams;
}

export function createApp(options: AppOptions): Hono {
  const metrics = options.metrics ?? new MetricsRegistry();
  const ctx: RouteContext = {
    client: options.client,
    project: options.project,
    webhooks: options.webhooks ?? WebhookTable.fromProject(options.project, Deno.env.toObject()),
    health: options.health,
    metrics,
    version: options.version,
    logs: options.logs,
    deploy: options.deploy,
    apiKeyConfigured: !!options.apiKey,
    liveStreams: options.liveStreams ?? new LiveStreams(),
  };
  const routes: RouteSpec[] = [];
  let document: Record<string, unknown> | undefined;
  const openapi = () =>
    document ??= buildOpenApi(routes, { version: ctx.version.version, apiKeyRequired: ctx.apiKeyConfigured });
  routes.push(
    ...systemRoutes(ctx, openapi),
    ...workflowRoutes(ctx),
    ...executionRoutes(ctx),
    ...webhookRoutes(ctx),
    ...definitionRoutes(ctx),
    ...logRoutes(ctx),
    ...adminRoutes(ctx),
  );

  const app = new Hono();
  app.use(requestMetrics(metrics));
  if (options.loopbackOnly && !options.apiKey) app.use(loopbackHostCheck());
  registerRoutes(app, routes, {
    bodyLimitBytes: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    bodyTimeoutMs: options.bodyTimeoutMs,
    authenticate: apiKeyCheck(options.apiKey),
    natsConnected: options.natsConnected ?? (() => true),
  });
  mountConsole(app);
  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    const allowed = allowedMethods(app, path);
    if (allowed.length > 0) {
      throw new ApiError(
        405,
        "method_not_allowed",
        `${c.req.method.slice(0, 32)} is not allowed on ${path}: it takes ${allowed.join(", ")}`,
        [{ allowed }],
        { allow: allowed.join(", ") },
      );
    }
    throw new ApiError(404, "not_found", `No route for ${c.req.method} ${path}`);
  });
  app.onError((err, c) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) {
      getLogger(["api"]).error("{method} {path} failed: {error}", {
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
    }
    return apiError.getResponse();
  });
  return app;
}

/** `Host` names that can only mean this machine; an IP literal of the loopback block or `::1`. */
const LOOPBACK_HOST = /^(localhost|[a-z0-9-]+\.localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

/** Refuses (403 `host_not_allowed`) a request whose `Host` is not a loopback name (DNS rebinding). */
function loopbackHostCheck(): MiddlewareHandler {
  return async (c, next) => {
    const host = c.req.header("host") ?? "";
    if (!LOOPBACK_HOST.test(host)) {
      throw new ApiError(
        403,
        "host_not_allowed",
        `Host '${host.slice(0, 100)}' is not a loopback name: a server without an API key on loopback ` +
          "answers requests to localhost, 127.0.0.1 or [::1] only",
      );
    }
    await next();
  };
}

function requestMetrics(metrics: MetricsRegistry): MiddlewareHandler {
  const requests = metrics.counter("compozy_http_requests_total", "HTTP requests by route and status");
  const latency = metrics.histogram("compozy_http_request_duration_seconds", "HTTP request latency by route");
  return async (c, next) => {
    const start = performance.now();
    await next();
    // The route pattern, not the URL: ids in URLs would make one series per execution.
    const route = c.req.routePath === "*" ? "unmatched" : c.req.routePath;
    requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    latency.observe({ route }, (performance.now() - start) / 1000);
  };
}
