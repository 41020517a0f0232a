/**
 * Checks of triggers: webhook paths are unique in the project, cron expressions parse.
 *
 * @module
 */

import { cronProblem } from "../trigger/cron.ts";
import type { Analysis, DiagnosticList } from "./analysis.ts";
import { locate } from "./yaml_source.ts";

export function checkTriggers(analysis: Analysis, diagnostics: DiagnosticList): void {
  const urls = new Map<string, string>();
  for (const { workflow, source, triggers } of analysis.workflows) {
    for (const { trigger, index: i } of triggers) {
      const path = ["triggers", i, "config"];
      if (trigger.type === "schedule") {
        const problem = cronProblem(trigger.config.cron);
        if (problem) diagnostics.error(source, [...path, "cron"], `invalid cron expression: ${problem}`);
        continue;
      }
      const first = urls.get(trigger.config.url);
      if (first) {
        diagnostics.error(
          source,
          [...path, "url"],
          `duplicate webhook url "${trigger.config.url}" (first used by ${first})`,
        );
        continue;
      }
      const { line } = locate(source, [...path, "url"]);
      urls.set(trigger.config.url, `workflow "${workflow.id}", line ${line}`);
    }
  }
}
