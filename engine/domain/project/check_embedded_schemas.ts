/**
 * Checks that the JSON Schemas users embed (workflow input, tool input and output, action output) are valid
 * schemas, so that a mistake in one surfaces at load time and not at the first trigger.
 *
 * @module
 */

import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type { PathSegment } from "../diagnostics.ts";
import type { Analysis, DiagnosticList, Site } from "./analysis.ts";

export function checkEmbeddedSchemas(analysis: Analysis, diagnostics: DiagnosticList): void {
  // The same options the runtime validates with: draft 2020-12 with the standard formats.
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const check = (site: Site, field: PathSegment[], schema: unknown) => {
    if (schema === undefined) return;
    if (!ajv.validateSchema(schema as object)) {
      for (const e of ajv.errors ?? []) {
        const inner = e.instancePath.split("/").slice(1).map((s) =>
          s.replaceAll("~1", "/").replaceAll("~0", "~")
        );
        diagnostics.error(
          site.source,
          [...site.path, ...field, ...inner],
          `invalid JSON Schema: ${e.message}`,
        );
      }
      return;
    }
    try {
      ajv.compile(schema as object);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      diagnostics.error(site.source, [...site.path, ...field], `invalid JSON Schema: ${message}`);
    }
  };
  for (const { workflow, source } of analysis.workflows) {
    check({ source, path: [] }, ["config", "input"], workflow.config.config?.input);
  }
  for (const [def, site] of analysis.sites) {
    if ("executePath" in def) {
      check(site, ["input"], def.input);
      check(site, ["output"], def.output);
    } else {
      (def.actions ?? []).forEach((action, i) => check(site, ["actions", i, "output"], action.output));
    }
  }
}
