/**
 * The template language of Compozy project files (see CONFIG.md, "Templates and expressions").
 *
 * Work in progress: the public API below is final; the implementation lands in follow-up commits.
 *
 * @module
 */

/** A template that failed to compile or render. */
export class TemplateError extends Error {
  override readonly name = "TemplateError";
  /** The whole template source the error belongs to. */
  readonly source: string;
  /** 0-based offset in `source` where the problem was found, when known. */
  readonly position?: number;
  /** Dotted path that could not be read, e.g. `tasks.get-weather.output`. */
  readonly path?: string;

  constructor(
    message: string,
    options: { source: string; position?: number; path?: string; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.source = options.source;
    this.position = options.position;
    this.path = options.path;
  }
}

/** The data a template reads, e.g. `{ workflow: { input }, tasks: { "get-weather": { output } }, env }`. */
export interface TemplateContext {
  [key: string]: unknown;
}

/** A parsed template, ready to render any number of times. */
export interface CompiledTemplate {
  readonly source: string;
  /** False for a plain string with no `{{ }}`. */
  readonly isTemplate: boolean;
  /** Every path the template reads, as segments; paths guarded by `default()` are listed too. */
  references(): string[][];
  /** A whole-value template keeps the value's type; otherwise the result is a string. */
  render(ctx: TemplateContext): unknown;
}

const notYet = (): never => {
  throw new Error("pkg/tplengine: not implemented yet");
};

/** Parses `source` once (cached). Throws {@linkcode TemplateError} on syntax errors. */
export function compileTemplate(source: string): CompiledTemplate {
  return notYet() ?? source;
}

/** Renders every string inside `value` (deep); keys and non-strings are unchanged. */
export function renderValue(value: unknown, ctx: TemplateContext): unknown {
  return notYet() ?? [value, ctx];
}

/** Every path read by any template string inside `value` (deep). */
export function templateReferences(value: unknown): string[][] {
  return notYet() ?? [value];
}

/** True when `s` contains `{{`, i.e. would be treated as a template. */
export function containsTemplate(s: string): boolean {
  return s.includes("{{");
}
