/**
 * A loaded workflow: its config, the tools and agents its file declares, and every task by id.
 *
 * @module
 */

import type { AgentDefinition } from "../agent/definition.ts";
import type { TaskConfig } from "../task/schema.ts";
import type { ToolDefinition } from "../tool/definition.ts";
import type { WorkflowConfig } from "./schema.ts";

export interface Workflow {
  id: string;
  /** Absolute path of the workflow file. */
  file: string;
  /** Directory of the workflow file; `file=` references and tool paths are relative to it. */
  dir: string;
  config: WorkflowConfig;
  /** Tools declared in this workflow file. */
  tools: Map<string, ToolDefinition>;
  /** Agents declared in this workflow file. */
  agents: Map<string, AgentDefinition>;
  /** Every task by id, inline children included (ids are unique per workflow). */
  tasks: Map<string, TaskConfig>;
}
