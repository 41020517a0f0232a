/**
 * Loading and checking Compozy projects: `compozy.yaml`, its workflows, tools and agents.
 *
 * @module
 */

export { ConfigError, type Diagnostic, formatDiagnostic } from "../diagnostics.ts";
export { parseDuration } from "../duration.ts";
export { checkProject, type LoadOptions, loadProject, PROJECT_FILE } from "./loader.ts";
export { resolveUse } from "./resolve_use.ts";
export type { McpProbe, Project, ResolvedUse } from "./types.ts";
export type { ProjectConfig } from "./schema.ts";
export type { Workflow } from "../workflow/definition.ts";
export type { WorkflowConfig } from "../workflow/schema.ts";
export type { ToolDefinition } from "../tool/definition.ts";
export type { ToolConfig, ToolPermissions } from "../tool/schema.ts";
export type { AgentDefinition } from "../agent/definition.ts";
export type { ActionConfig, AgentConfig, AgentModelConfig, ModelConfig, Provider } from "../agent/schema.ts";
export type {
  AggregateTask,
  BasicTask,
  CollectionTask,
  CompositeTask,
  ParallelStrategy,
  ParallelTask,
  RouterTask,
  SignalTask,
  SleepTask,
  TaskCommon,
  TaskConfig,
  TaskOrId,
  TaskType,
  WaitTask,
} from "../task/schema.ts";
export type { ScheduleTrigger, TriggerConfig, WebhookTrigger } from "../trigger/schema.ts";
