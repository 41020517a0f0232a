/**
 * What the routes share: the engine client, the loaded project and the optional collaborators. Routes read
 * it, never change it; a reload builds a new app around a new context.
 *
 * @module
 */
import type { ExecutionClient } from "../../engine/client.ts";
import type { Project } from "../../engine/domain/project/types.ts";
import type { WebhookTable } from "../../engine/triggers/webhook_table.ts";
import type { HealthCheck } from "../health.ts";
import type { LogSource } from "../log_source.ts";
import type { MetricsRegistry } from "../metrics.ts";
import type { LiveStreams } from "../sse.ts";

export interface VersionInfo {
  version: string;
  commit?: string;
  builtAt?: string;
}

/** Loads a deployed bundle (see routes/admin.ts); resolves once the new definitions serve requests. */
export type DeployHandler = (bundle: DeployBundle) => Promise<DeployResult>;

export interface DeployBundle {
  format: "compozy-bundle/1";
  project: string;
  created_at: string;
  files: Record<string, string>;
}

export interface DeployResult {
  deployment: string;
  project: string;
  workflows: string[];
}

export interface RouteContext {
  client: ExecutionClient;
  project: Project;
  webhooks: WebhookTable;
  health: HealthCheck;
  metrics: MetricsRegistry;
  version: VersionInfo;
  logs?: LogSource;
  deploy?: DeployHandler;
  /** Whether an API key is configured: deployments are refused without one (red team 4 F1). */
  apiKeyConfigured: boolean;
  /** The open live event streams (see server/sse.ts). */
  liveStreams: LiveStreams;
}
