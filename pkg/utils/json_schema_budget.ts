/**
 * A bound on the work of one validation by an Ajv instance of {@linkcode jsonSchemaAjv}.
 *
 * Ajv tries the branches of an `anyOf` one after the other (and every branch of a `oneOf`), each on the
 * whole value below it, so a recursive schema whose branches all descend into the same member doubles its
 * work per level of the value: an expression tree `{ anyOf: [{ properties: { args: { items: { $ref } },
 * op: { const: "add" } } }, { … op: { const: "mul" } }, { type: "number" }] }` took 7.5 s for a tool output
 * of 573 bytes nested 26 levels (each level more doubles it; outputs may nest 64), on the runtime's thread,
 * where every other call waited (outside break attempt brk42).
 *
 * Only a schema reached through a `$ref` can meet the value again and again (without one, the schema's own
 * size bounds the walk), and Ajv compiles each such schema into a function of its own. So each compiled
 * function first takes a step from the instance's budget (`code.process`, which Ajv offers to rewrite the
 * code it generates); a call with one argument is a validation's start and refills it. Past the budget
 * every compiled function fails at once, with an error naming the bound, so the validation ends promptly
 * as a failure: callers that read `errors` see that error, and {@linkcode validationBudgetExhausted} tells
 * them why.
 *
 * @module
 */

/** Entries into compiled schema functions one validation may make (0.6 s of the costliest schemas at load 15). */
export const MAX_VALIDATION_STEPS = 2_000_000;

/** The keyword of the error a validation past its budget reports. */
export const BUDGET_KEYWORD = "validationBudget";

/** What the generated code reaches through Ajv's `self` (the instance): kept under this name. */
const BUDGET_PROPERTY = "compozyValidationBudget";

/** The budget of one Ajv instance: one validation runs at a time (Ajv validates synchronously). */
class StepBudget {
  #left = MAX_VALIDATION_STEPS;
  exhausted = false;

  /** A validation starts: the whole budget again. */
  start(): void {
    this.#left = MAX_VALIDATION_STEPS;
    this.exhausted = false;
  }

  /** Takes a step; false once the budget is spent. */
  step(): boolean {
    if (this.#left > 0) {
      this.#left--;
      return true;
    }
    this.exhausted = true;
    return false;
  }
}

/**
 * The head of every function Ajv generates: `return function validate12(data, {instancePath="", …}={}){`.
 * No `)` occurs inside its parameters.
 */
const FUNCTION_HEAD = /return function (validate\d+)\(data, \{[^)]*\}=\{\}\)\{/;

/**
 * Ajv's `code.process`: puts the step at the head of a generated function.
 *
 * @throws {Error} when the code has no head it knows (an Ajv whose code changed): no schema compiles
 * unbounded.
 */
export function stepAtEntry(code: string): string {
  const head = FUNCTION_HEAD.exec(code);
  if (head === null) {
    throw new Error("Ajv generated a validation function whose head is unknown: its work cannot be bounded");
  }
  const name = head[1];
  const step = `const stepBudget = self.${BUDGET_PROPERTY};if(arguments.length < 2){stepBudget.start();}` +
    `if(!stepBudget.step()){${name}.errors = [{instancePath,schemaPath:"#",keyword:"${BUDGET_KEYWORD}",` +
    `params:{limit: ${MAX_VALIDATION_STEPS}},message:"took more than ${MAX_VALIDATION_STEPS} steps to check ` +
    `against the schema (branches of an anyOf or oneOf that all recurse into the same value double the work ` +
    `per level)"}];return false;}`;
  const at = head.index + head[0].length;
  return code.slice(0, at) + step + code.slice(at);
}

/** Gives `ajv` its budget; to be called once, right after it is made with {@linkcode stepAtEntry}. */
export function addValidationBudget(ajv: object): void {
  Object.defineProperty(ajv, BUDGET_PROPERTY, { value: new StepBudget() });
}

/** Whether the last validation of `ajv` stopped at its budget (then its errors include the budget's). */
export function validationBudgetExhausted(ajv: object): boolean {
  return (ajv as Record<string, StepBudget | undefined>)[BUDGET_PROPERTY]?.exhausted === true;
}
