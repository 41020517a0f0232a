/**
 * A loaded agent: its config plus the file that declares it.
 *
 * @module
 */

import type { AgentConfig } from "./schema.ts";

export interface AgentDefinition extends AgentConfig {
  /** Absolute path of the file that declares the agent. */
  file: string;
}

/** Binds a validated agent config to the file that declares it. */
export function toAgentDefinition(config: AgentConfig, file: string): AgentDefinition {
  return { ...config, file };
}
