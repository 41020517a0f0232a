/**
 * Field shapes shared by several config kinds, declared once so that every schema describes them alike.
 *
 * @module
 */

import { z } from "zod";
import { DELAY_FORMAT, DURATION_FORMAT, DURATION_PATTERN, MAX_DURATION } from "./duration.ts";
import { ID_PATTERN, MAX_ID_LENGTH } from "./ids.ts";

/** An id of a workflow, task, tool, agent, action, model or signal. */
export const idField = (what: string) =>
  z.string().regex(new RegExp(ID_PATTERN)).max(MAX_ID_LENGTH).describe(
    `${what}; matches [a-z0-9][a-z0-9_-]*, at most ${MAX_ID_LENGTH} characters`,
  );

/**
 * A literal duration (not a template), above zero and at most {@linkcode MAX_DURATION}; with `zero`, 0 is
 * allowed too. The bounds are a JSON Schema `format`, checked by the loader (schema_validation.ts).
 */
export const durationField = (what: string, opts: { zero?: boolean } = {}) =>
  z.string().regex(new RegExp(DURATION_PATTERN)).describe(
    `${what}: 500ms, 30s, 5m, 1h or 1d; ${opts.zero ? "0 or more" : "above zero"}, at most ${MAX_DURATION}`,
  ).meta({ format: opts.zero ? DELAY_FORMAT : DURATION_FORMAT, examples: ["30s", "5m"] });

/** An `env:` map; values may be templates. */
export const envField = () =>
  z.record(z.string(), z.string()).describe(
    "Environment values (may be templates); `.env.NAME` looks here before the process environment",
  ).meta({ examples: [{ UNITS: "metric" }] });

/** An embedded JSON Schema (tool input, action output, workflow input), checked by its own validator. */
export const jsonSchemaField = (what: string) =>
  z.record(z.string(), z.unknown()).describe(`JSON Schema of ${what}`).meta({
    examples: [{ type: "object", properties: { city: { type: "string" } }, required: ["city"] }],
  });

/** Any YAML value whose strings may hold `{{ }}` templates. */
export const templatedValue = () => z.unknown();
