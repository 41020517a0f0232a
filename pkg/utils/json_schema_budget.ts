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
 * An entry's own work is not bounded by the schema alone: its loops (`items`, `contains`, the keys of
 * `additionalProperties`…) run over the value's members there, and an entry that meets a large array
 * inlines the whole walk of it. Entries alone let the recursive `anyOf` above revisit a leaf of 100,000
 * numbers 2^18 times (200 KB, 11 s on the runtime's thread, under the entry bound: outside break attempt
 * brk43). So each loop's turn takes a step as well, and the budget grows with the value's size: an honest
 * validation visits each member of the value a few times (once per schema loop over it), so
 * {@linkcode STEPS_PER_NODE} per member of the value, or {@linkcode MAX_VALIDATION_STEPS} when that is more.
 *
 * Some keywords' work grows with the member they check without a loop of the generated code: a string's
 * `pattern`, `format`, `minLength`/`maxLength` read all of it, `uniqueItems` all of its array, and
 * `minProperties`/`maxProperties` count all the keys. A leaf of 100,000 characters under `pattern` revisited
 * 2^14 times took 39 s (brk43). Those keywords take {@linkcode chargeSteps} of their member's weight, and
 * a string weighs one member per {@linkcode CHARS_PER_STEP} characters in the budget too.
 *
 * @module
 */

/** Entries into compiled schema functions one validation may make (0.6 s of the costliest schemas at load 15). */
export const MAX_VALIDATION_STEPS = 2_000_000;

/** Steps allowed per member (object, array, scalar) of the validated value, when that gives more. */
export const STEPS_PER_NODE = 8;

/** Characters of a string that a keyword reading it may read per step (the same in the budget). */
export const CHARS_PER_STEP = 8;

/** The keyword of the error a validation past its budget reports. */
export const BUDGET_KEYWORD = "validationBudget";

/** What the generated code reaches through Ajv's `self` (the instance): kept under this name. */
const BUDGET_PROPERTY = "compozyValidationBudget";

/** The budget of one Ajv instance: one validation runs at a time (Ajv validates synchronously). */
class StepBudget {
  #left = MAX_VALIDATION_STEPS;
  limit = MAX_VALIDATION_STEPS;
  exhausted = false;

  /** A validation of `data` starts: the whole budget again, for a value of its size. */
  start(data: unknown): void {
    this.limit = Math.max(MAX_VALIDATION_STEPS, STEPS_PER_NODE * countNodes(data));
    this.#left = this.limit;
    this.exhausted = false;
  }

  /** Takes a step; false once the budget is spent. */
  step(): boolean {
    return this.take(1);
  }

  /** Takes `steps`; false, taking none, when fewer are left. */
  take(steps: number): boolean {
    if (this.#left >= steps) {
      this.#left -= steps;
      return true;
    }
    this.#left = 0;
    this.exhausted = true;
    return false;
  }
}

/** The steps a keyword that reads all of `text` (a string, else any scalar) takes. */
export function stringSteps(text: unknown): number {
  return typeof text === "string" ? 1 + Math.floor(text.length / CHARS_PER_STEP) : 1;
}

/**
 * The members of a JSON value, itself included, a long string counting as one per {@linkcode CHARS_PER_STEP}
 * characters (without recursion: values may nest deep).
 */
export function countNodes(data: unknown): number {
  let count = 0;
  const pending: unknown[] = [data];
  while (pending.length > 0) {
    const value = pending.pop();
    count += stringSteps(value);
    if (value === null || typeof value !== "object") continue;
    if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else {
      for (const key in value) {
        count += Math.floor(key.length / CHARS_PER_STEP);
        pending.push((value as Record<string, unknown>)[key]);
      }
    }
  }
  return count;
}

/**
 * The head of every function Ajv generates: `return function validate12(data, {instancePath="", …}={}){`.
 * No `)` occurs inside its parameters.
 */
const FUNCTION_HEAD = /return function (validate\d+)\(data, \{[^)]*\}=\{\}\)\{/;

/** The head of every loop Ajv generates: `for(let i0=0; i0<len0; i0++){`, `for(const key0 in data){`. */
const LOOP_HEAD = /for\((?:let|const) [^{}]*\)\{/g;

/**
 * Ajv's `code.process`: puts the step at the head of a generated function and of each of its loops' turns.
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
  const step =
    `if(!stepBudget.step()){${name}.errors = [{instancePath,schemaPath:"#",keyword:"${BUDGET_KEYWORD}",` +
    `params:{limit: stepBudget.limit},message:"took more than " + stepBudget.limit + " steps to check ` +
    `against the schema (branches of an anyOf or oneOf that all recurse into the same value double the work ` +
    `per level)"}];return false;}`;
  const at = head.index + head[0].length;
  // Loops only after the head: the budget is declared there.
  const body = code.slice(at).replace(LOOP_HEAD, (loop) => loop + step);
  return code.slice(0, at) + `const stepBudget = self.${BUDGET_PROPERTY};` +
    `if(arguments.length < 2){stepBudget.start(data);}` + step + body;
}

/** Gives `ajv` its budget; to be called once, right after it is made with {@linkcode stepAtEntry}. */
export function addValidationBudget(ajv: object): void {
  Object.defineProperty(ajv, BUDGET_PROPERTY, { value: new StepBudget() });
}

/**
 * Takes `steps` from the budget of the validation `ajv` is running, for a keyword whose work grows with its
 * member; false when the budget is spent (the keyword then fails with {@linkcode budgetError}).
 */
export function chargeSteps(ajv: object, steps: number): boolean {
  const budget = (ajv as Record<string, StepBudget | undefined>)[BUDGET_PROPERTY];
  if (budget === undefined) {
    throw new Error("this Ajv instance has no validation budget: its work cannot be bounded");
  }
  return budget.take(steps);
}

/** The error of a keyword refused by {@linkcode chargeSteps}, in Ajv's shape for a custom keyword's errors. */
export function budgetError(ajv: object): { keyword: string; params: { limit: number }; message: string } {
  const limit = validationBudgetLimit(ajv);
  return {
    keyword: BUDGET_KEYWORD,
    params: { limit },
    message:
      `took more than ${limit} steps to check against the schema (branches of an anyOf or oneOf that ` +
      "all recurse into the same value double the work per level)",
  };
}

/** The steps the last validation of `ajv` was allowed (for its size). */
export function validationBudgetLimit(ajv: object): number {
  return (ajv as Record<string, StepBudget | undefined>)[BUDGET_PROPERTY]?.limit ?? MAX_VALIDATION_STEPS;
}

/** Whether the last validation of `ajv` stopped at its budget (then its errors include the budget's). */
export function validationBudgetExhausted(ajv: object): boolean {
  return (ajv as Record<string, StepBudget | undefined>)[BUDGET_PROPERTY]?.exhausted === true;
}
