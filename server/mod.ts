/**
 * The HTTP API service (API.md): `createApp` builds the Hono app; the rest are the collaborators a process
 * wires into it.
 *
 * @module
 */
export { type AppOptions, createApp } from "./app.ts";
export { ApiError, type ErrorBody, toApiError } from "./api_error.ts";
export { signBody } from "./constant_time.ts";
export { collectEngineMetrics } from "./event_metrics.ts";
export { HEALTH_SUBJECTS, type HealthCheck, type HealthReport, natsHealthCheck } from "./health.ts";
export { jetStreamLogSource, type LogRecord, type LogSource } from "./log_source.ts";
export { MetricsRegistry } from "./metrics.ts";
export { type NatsLink, watchNatsLink } from "./nats_link.ts";
export type { DeployBundle, DeployHandler, DeployResult, VersionInfo } from "./routes/context.ts";
export { SIGNATURE_HEADER } from "./routes/webhooks.ts";
export { LiveStreams } from "./sse.ts";
