/**
 * The checks that need the whole project, run after every file is read; each adds diagnostics and none stops
 * the others.
 *
 * @module
 */

import type { Analysis, DiagnosticList } from "./analysis.ts";
import { checkDefinitions } from "./check_definitions.ts";
import { checkReferences } from "./check_references.ts";
import type { LoadOptions } from "./loader.ts";

export async function runChecks(
  analysis: Analysis,
  diagnostics: DiagnosticList,
  _opts: LoadOptions,
): Promise<void> {
  checkReferences(analysis, diagnostics);
  await checkDefinitions(analysis, diagnostics);
}
