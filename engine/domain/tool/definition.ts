/**
 * A loaded tool: its config plus where it was declared and the absolute path of its module.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import type { ToolConfig } from "./schema.ts";

export interface ToolDefinition extends ToolConfig {
  /** Absolute path of the module to run (`execute` resolved against the declaring file). */
  executePath: string;
  /** Absolute path of the file that declares the tool. */
  file: string;
}

/** Binds a validated tool config to the file that declares it. */
export function toToolDefinition(config: ToolConfig, file: string): ToolDefinition {
  return { ...config, executePath: resolve(dirname(file), config.execute), file };
}
