/** Where a {@linkcode TemplateError} happened and what caused it. */
export interface TemplateErrorOptions {
  /** The whole template source. */
  source: string;
  /** 0-based offset in `source`. */
  position?: number;
  /** Dotted path that could not be read, e.g. `tasks.get-weather.output`. */
  path?: string;
  /** Keys leading from the value given to `renderValue`/`templateReferences` to the failing string. */
  valuePath?: (string | number)[];
  cause?: unknown;
}

/**
 * The one error type of the template engine: syntax errors at compile time, missing values and type errors
 * at render time. Nothing else escapes `compileTemplate`, `render`, `renderValue` or `templateReferences`.
 *
 * @example
 * ```ts
 * import { compileTemplate, TemplateError } from "./mod.ts";
 * try {
 *   compileTemplate("Hello {{ .name");
 * } catch (err) {
 *   if (err instanceof TemplateError) console.log(err.position); // 6
 * }
 * ```
 */
export class TemplateError extends Error {
  override readonly name: string = "TemplateError";
  /** The whole template source the error belongs to. */
  readonly source: string;
  /** 0-based offset in `source` where the problem was found, when known. */
  readonly position?: number;
  /** Dotted path that could not be read, e.g. `tasks.get-weather.output`. */
  readonly path?: string;
  /**
   * Keys leading from the value given to `renderValue`/`templateReferences` to the failing string, e.g.
   * `["with", "weather"]`; unset when the failing string was the value itself or when compiling directly.
   */
  readonly valuePath?: (string | number)[];

  constructor(message: string, options: TemplateErrorOptions) {
    super(message, { cause: options.cause });
    this.source = options.source;
    this.position = options.position;
    this.path = options.path;
    this.valuePath = options.valuePath;
  }
}

/**
 * A path that resolved to nothing. Its own class so that `default()` can recover from exactly this failure
 * and from no other; callers only ever see it as a {@linkcode TemplateError}.
 */
export class MissingValueError extends TemplateError {}
