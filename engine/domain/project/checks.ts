/**
 * The checks that need the whole project, run after every file is read; each adds diagnostics and none stops
 * the others.
 *
 * @module
 */

import type { Analysis, DiagnosticList } from "./analysis.ts";
import { checkCallInputs } from "./check_call_inputs.ts";
import { checkDefinitions } from "./check_definitions.ts";
import { checkEmbeddedSchemas } from "./check_embedded_schemas.ts";
import { checkFlow } from "./check_flow.ts";
import { checkMcp } from "./check_mcp.ts";
import { checkReferences } from "./check_references.ts";
import { checkTemplates } from "./check_templates.ts";
import { checkToolPermissions } from "./check_tool_permissions.ts";
import { checkTriggers } from "./check_triggers.ts";
import { checkWorkflowCycles } from "./check_workflow_cycles.ts";
import type { LoadOptions } from "./types.ts";

export async function runChecks(
  analysis: Analysis,
  diagnostics: DiagnosticList,
  opts: LoadOptions,
): Promise<void> {
  checkReferences(analysis, diagnostics);
  checkFlow(analysis, diagnostics);
  checkWorkflowCycles(analysis, diagnostics);
  checkTriggers(analysis, diagnostics);
  checkEmbeddedSchemas(analysis, diagnostics);
  checkCallInputs(analysis, diagnostics);
  checkTemplates(analysis, diagnostics, opts);
  await checkDefinitions(analysis, diagnostics, opts);
  await checkToolPermissions(analysis, diagnostics);
  await checkMcp(analysis, diagnostics, opts);
}
