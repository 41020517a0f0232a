/**
 * Structured output of an action: the schema goes to the provider as its response format, and the reply is
 * checked here with Ajv (JSON Schema 2020-12) so that a failure names the fields at fault — both in the
 * repair request sent back to the model and in the final `agent_output_invalid`.
 *
 * @module
 */

import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { jsonSchemaAjv } from "../../utils/json_schema.ts";
import { addLinearFormats } from "../../utils/json_formats.ts";
import { budgetError, validationBudgetExhausted } from "../../utils/json_schema_budget.ts";
import type { OutputInterface } from "ai";
import { configInvalid, errorMessage } from "./agent_failure.ts";

/** One reason a reply fails: a JSON Pointer into the reply (`/` for the whole) and what is wrong there. */
export interface OutputProblem {
  path: string;
  message: string;
}

export type OutputCheck = { ok: true; value: unknown } | { ok: false; problems: OutputProblem[] };

/** A compiled output schema. */
export interface StructuredOutput {
  /** For `streamText({ output })`: asks the provider for JSON of this schema, hands back the raw text. */
  readonly responseFormat: OutputInterface<string, string, never>;
  /** Parses and validates one reply. */
  check(reply: string): OutputCheck;
}

// Not strict: users write schemas by hand and annotate them (`example`, `title` on odd places…); an
// unknown keyword is not a reason to fail their agent. Formats (email, date-time…) are enforced, in linear
// time (json_formats.ts).
const ajv = addLinearFormats(jsonSchemaAjv({ allErrors: true, strict: false }));

/**
 * Compiled validators by schema text. Schemas come from project files, so the set is small and stable; a
 * cache keyed by content (not object identity) also keeps Ajv from seeing a schema's `$id` twice.
 */
const validators = new Map<string, ValidateFunction>();

/**
 * Compiles `schema` (once per distinct schema). Throws `agent_config_invalid` when it is not a valid schema.
 *
 * @example
 * ```ts
 * import { compileOutputSchema } from "./structured_output.ts";
 * const output = compileOutputSchema({ type: "object", required: ["advice"] }, "agent 'a'");
 * output.check('{"advice":"coat"}'); // { ok: true, value: { advice: "coat" } }
 * output.check("{}"); // { ok: false, problems: [{ path: "/advice", message: "is required" }] }
 * ```
 */
export function compileOutputSchema(schema: Record<string, unknown>, label: string): StructuredOutput {
  const key = JSON.stringify(schema);
  let validate = validators.get(key);
  if (!validate) {
    try {
      validate = ajv.compile(schema);
    } catch (error) {
      throw configInvalid(`${label}: the output schema is not valid JSON Schema: ${errorMessage(error)}`, {
        field: "output",
      }, error);
    }
    validators.set(key, validate);
  }
  return { responseFormat: jsonResponseFormat(schema), check: (reply) => checkReply(reply, validate) };
}

function checkReply(reply: string, validate: ValidateFunction): OutputCheck {
  let value: unknown;
  try {
    value = JSON.parse(stripCodeFence(reply));
  } catch (error) {
    return {
      ok: false,
      problems: [{ path: "/", message: `the reply is not JSON (${errorMessage(error)})` }],
    };
  }
  const valid = validate(value);
  // Past the step bound every check fails, and under a `not` or in a `oneOf` a failure is a pass: "valid"
  // then says nothing (json_schema_budget.ts, brk43).
  if (validationBudgetExhausted(ajv)) {
    return { ok: false, problems: [{ path: "/", message: budgetError(ajv).message }] };
  }
  if (valid) return { ok: true, value };
  return { ok: false, problems: (validate.errors ?? []).map(toProblem) };
}

/**
 * Models often wrap JSON in a Markdown fence even when asked for JSON alone; unwrapping it spares a repair
 * request for a reply whose content is right.
 */
function stripCodeFence(reply: string): string {
  const fenced = /^\s*```[a-zA-Z]*\s*\n([\s\S]*?)\n?```\s*$/.exec(reply);
  return fenced ? fenced[1] : reply;
}

/** Names the field itself for `required` and `additionalProperties`, where Ajv points at the parent. */
function toProblem(error: ErrorObject): OutputProblem {
  const at = (name: unknown) =>
    `${error.instancePath}/${String(name).replaceAll("~", "~0").replaceAll("/", "~1")}`;
  if (error.keyword === "required") return { path: at(error.params.missingProperty), message: "is required" };
  if (error.keyword === "additionalProperties") {
    return { path: at(error.params.additionalProperty), message: "is not allowed" };
  }
  return { path: error.instancePath || "/", message: error.message ?? error.keyword };
}

/** `path: message` lines, for the repair request and the failure message. */
export function describeProblems(problems: OutputProblem[]): string {
  return problems.map((problem) => `${problem.path}: ${problem.message}`).join("; ");
}

/**
 * The AI SDK's `Output.object` parses and validates the reply itself and throws on failure, taking the raw
 * text with it; this output only sets the response format and returns the text, so validation (and the
 * repair) stays here.
 */
function jsonResponseFormat(schema: Record<string, unknown>): OutputInterface<string, string, never> {
  return {
    name: "object",
    responseFormat: Promise.resolve({ type: "json", schema }),
    parseCompleteOutput: ({ text }) => Promise.resolve(text),
    // The text so far, unparsed: the SDK holds a streamed reply's text back until this changes, and the
    // loop streams every reply's text to live views (agent_runner.ts).
    parsePartialOutput: ({ text }) => Promise.resolve({ partial: text }),
    createElementStreamTransform: () => undefined,
  };
}
