/**
 * Checks that the JSON Schemas users embed (workflow input, tool input and output, action output) are valid
 * schemas, so that a mistake in one surfaces at load time and not at the first trigger.
 *
 * @module
 */

import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type { PathSegment } from "../diagnostics.ts";
import type { Analysis, DiagnosticList, Site } from "./analysis.ts";
import { isToolDefinition } from "./resolve_use.ts";

export function checkEmbeddedSchemas(analysis: Analysis, diagnostics: DiagnosticList): void {
  const check = (site: Site, field: PathSegment[], schema: unknown) => {
    if (schema === undefined) return;
    for (const problem of schemaProblems(schema)) {
      const path = [...site.path, ...field, ...problem.path];
      if (problem.warning) diagnostics.warning(site.source, path, problem.message);
      else diagnostics.error(site.source, path, `invalid JSON Schema: ${problem.message}`);
    }
  };
  for (const { workflow, source } of analysis.workflows) {
    check({ source, path: [] }, ["config", "input"], workflow.config.config?.input);
  }
  for (const [def, site] of analysis.sites) {
    if (isToolDefinition(def)) {
      check(site, ["input"], def.input);
      check(site, ["output"], def.output);
    } else {
      (def.actions ?? []).forEach((action, i) => check(site, ["actions", i, "output"], action.output));
    }
  }
}

interface SchemaProblem {
  path: string[];
  message: string;
  /** A schema that works but not as written (an unknown `format`, which validators ignore). */
  warning?: boolean;
}

/** What Ajv logs while compiling (an unknown format it ignores), collected to be reported at its field. */
const logged: string[] = [];
const UNKNOWN_FORMAT = /^unknown format "(.*)" ignored in schema at path "#(.*)"$/;

let ajv: Ajv2020 | undefined;
/**
 * Problems by schema text: projects repeat the same small schemas, and compiling one costs ~0.5 ms. Bounded,
 * since a server reloading edited projects would otherwise keep every version.
 */
const problemsBySchema = new Map<string, SchemaProblem[]>();
const MAX_REMEMBERED = 1_000;

function schemaProblems(schema: unknown): SchemaProblem[] {
  const key = JSON.stringify(schema);
  let problems = problemsBySchema.get(key);
  if (problems) return problems;
  if (!ajv) {
    // The dialect the runtime validates with: draft 2020-12 with the standard formats.
    ajv = new Ajv2020({
      strict: false,
      allErrors: true,
      addUsedSchema: false,
      logger: {
        log: () => {},
        warn: (...args) => logged.push(args.join(" ")),
        error: (...args) => logged.push(args.join(" ")),
      },
    });
    addFormats.default(ajv);
  }
  if (!ajv.validateSchema(schema as object)) {
    problems = mostTellingPerPlace(ajv.errors ?? []).map((e) => ({
      path: e.instancePath.split("/").slice(1).map(unescapePointer),
      message: e.message +
        (e.keyword === "enum" ? `: ${(e.params.allowedValues as unknown[]).join(", ")}` : ""),
    }));
  } else {
    try {
      logged.length = 0;
      ajv.compile(schema as object);
      ajv.removeSchema(schema as object); // compiled only to find problems; keep nothing
      problems = [...new Set(logged)].map(loggedProblem); // Ajv may log one twice
    } catch (err) {
      problems = [{ path: [], message: err instanceof Error ? err.message : String(err) }];
    }
  }
  if (problemsBySchema.size >= MAX_REMEMBERED) problemsBySchema.clear();
  problemsBySchema.set(key, problems);
  return problems;
}

function loggedProblem(line: string): SchemaProblem {
  const unknown = UNKNOWN_FORMAT.exec(line);
  if (!unknown) return { path: [], message: line, warning: true };
  return {
    path: [...unknown[2].split("/").slice(1).map(unescapePointer), "format"],
    message: `unknown format "${unknown[1]}": JSON Schema ignores it, so it checks nothing ` +
      "(known formats include date, date-time, email, uri, uuid)",
    warning: true,
  };
}

function unescapePointer(segment: string): string {
  return segment.replaceAll("~1", "/").replaceAll("~0", "~");
}

/**
 * The meta-schema reports a bad `type: objct` three ways (not a list, not an allowed value, no `anyOf`
 * branch); one error per place is enough, and the list of allowed values says the most.
 */
function mostTellingPerPlace(errors: ErrorObject[]): ErrorObject[] {
  const rank = (e: ErrorObject) =>
    e.keyword === "enum" ? 0 : e.keyword === "anyOf" || e.keyword === "oneOf" ? 2 : 1;
  const best = new Map<string, ErrorObject>();
  for (const e of errors) {
    const current = best.get(e.instancePath);
    if (!current || rank(e) < rank(current)) best.set(e.instancePath, e);
  }
  return [...best.values()];
}
