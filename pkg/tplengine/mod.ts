/**
 * The template language of Compozy project files (CONFIG.md, "Templates and expressions"): `{{ expr }}`
 * anywhere in a string, with paths (`.tasks.get-weather.output`), literals, comparisons, `&& || !`,
 * parentheses, helpers (`default json len upper lower now`) and pipes (`.x | default(1)`).
 *
 * Templates are data, never code: a hand-written lexer, parser and tree-walking evaluator read only own data
 * properties of the context, so a template cannot run code, reach prototypes, files or the network.
 *
 * @module
 */
import { LruCache } from "./cache.ts";
import { renderParts } from "./evaluate.ts";
import { children, type Node, parseTemplate, type Part } from "./parser.ts";
import { TemplateError } from "./template_error.ts";

export { TemplateError, type TemplateErrorOptions } from "./template_error.ts";

/** Longest template source accepted, in UTF-16 units; plain strings without `{{` have no limit. */
export const MAX_TEMPLATE_LENGTH = 64 * 1024;

/** The data a template reads, e.g. `{ workflow: { input }, tasks: { "get-weather": { output } }, env }`. */
export interface TemplateContext {
  [key: string]: unknown;
}

/** A parsed template, ready to render any number of times. Immutable and shared through the cache. */
export interface CompiledTemplate {
  readonly source: string;
  /** False for a plain string with no `{{ }}`. */
  readonly isTemplate: boolean;
  /**
   * Every path the template reads, as segments, in source order without duplicates; paths guarded by
   * `default()` are listed too.
   */
  references(): string[][];
  /**
   * A whole-value template (`"{{ .x }}"`, nothing outside the braces) returns the value with its type;
   * otherwise the result is a string, with non-string values inserted as JSON. Values taken from `ctx` are
   * returned as they are, not copied. Throws {@linkcode TemplateError} on a missing path or a type error.
   */
  render(ctx: TemplateContext): unknown;
}

const cache = new LruCache<CompiledTemplate>(5_000, 16 * 1024 * 1024);

/**
 * Parses `source` once; later calls with the same source return the cached template.
 * Throws {@linkcode TemplateError} (with `position`) on a syntax error, an unknown function or a wrong
 * argument count.
 *
 * @example
 * ```ts
 * import { compileTemplate } from "./mod.ts";
 * const t = compileTemplate("{{ .tasks.get-weather.output.temp | default(0) > 20 }}");
 * t.references(); // [["tasks", "get-weather", "output", "temp"]]
 * t.render({ tasks: { "get-weather": { output: { temp: 25 } } } }); // true
 * ```
 */
export function compileTemplate(source: string): CompiledTemplate {
  if (!containsTemplate(source)) return plainString(source);
  const cached = cache.get(source);
  if (cached) return cached;
  if (source.length > MAX_TEMPLATE_LENGTH) {
    throw new TemplateError(
      `template is ${source.length} characters long; the limit is ${MAX_TEMPLATE_LENGTH}`,
      {
        source,
      },
    );
  }
  const parts = parseTemplate(source);
  const refs = collectReferences(parts);
  const compiled: CompiledTemplate = Object.freeze({
    source,
    isTemplate: true,
    references: () => refs.map((segments) => [...segments]),
    render: (ctx: TemplateContext) => renderParts(parts, source, ctx),
  });
  cache.set(source, compiled);
  return compiled;
}

/**
 * Renders every string inside `value`, descending into arrays and plain objects; keys, and values that are
 * not strings, are kept as they are. Returns new arrays and objects; `value` is not modified.
 * A {@linkcode TemplateError} from a nested string carries `valuePath`, the keys leading to it.
 *
 * @example
 * ```ts
 * import { renderValue } from "./mod.ts";
 * renderValue({ city: "{{ .workflow.input.city }}", days: 3 }, { workflow: { input: { city: "Lisbon" } } });
 * // { city: "Lisbon", days: 3 }
 * ```
 */
export function renderValue(value: unknown, ctx: TemplateContext): unknown {
  return mapStrings(value, [], new Set(), (s) => containsTemplate(s) ? compileTemplate(s).render(ctx) : s);
}

/**
 * Every path read by any template string inside `value` (deep), without duplicates; use it to check
 * references and task dependencies at load time. Throws {@linkcode TemplateError} on a syntax error.
 *
 * @example
 * ```ts
 * import { templateReferences } from "./mod.ts";
 * templateReferences({ with: { weather: "{{ .tasks.get-weather.output }}" } });
 * // [["tasks", "get-weather", "output"]]
 * ```
 */
export function templateReferences(value: unknown): string[][] {
  const found = new Map<string, string[]>();
  mapStrings(value, [], new Set(), (s) => {
    for (const segments of compileTemplate(s).references()) found.set(segments.join("."), segments);
    return s;
  });
  return [...found.values()];
}

/**
 * True when `s` contains `{{`, i.e. is treated as a template.
 *
 * @example
 * ```ts
 * import { containsTemplate } from "./mod.ts";
 * containsTemplate("Hello {{ .input.name }}"); // true
 * containsTemplate("Hello"); // false
 * ```
 */
export function containsTemplate(s: string): boolean {
  return s.includes("{{");
}

function plainString(source: string): CompiledTemplate {
  return Object.freeze({ source, isTemplate: false, references: () => [], render: () => source });
}

function collectReferences(parts: Part[]): string[][] {
  const found = new Map<string, string[]>();
  const visit = (node: Node): void => {
    if (node.type === "path") found.set(node.segments.join("."), node.segments);
    children(node).forEach(visit);
  };
  for (const part of parts) if (part.type === "expr") visit(part.node);
  return [...found.values()];
}

/** Rebuilds arrays and plain objects with `fn` applied to every string, locating any error it throws. */
function mapStrings(
  value: unknown,
  path: (string | number)[],
  ancestors: Set<object>,
  fn: (s: string) => unknown,
): unknown {
  if (typeof value === "string") return locate(path, () => fn(value));
  if (!Array.isArray(value) && !isPlainObject(value)) return value;
  if (ancestors.has(value)) {
    throw new TemplateError(`value is cyclic at ${formatPath(path)}`, { source: "", valuePath: path });
  }
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((item, i) => mapStrings(item, [...path, i], ancestors, fn));
    // fromEntries defines own properties, so a "__proto__" key stays a key instead of setting the prototype.
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, mapStrings(item, [...path, key], ancestors, fn)]),
    );
  } finally {
    ancestors.delete(value);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function locate(path: (string | number)[], run: () => unknown): unknown {
  try {
    return run();
  } catch (err) {
    if (!(err instanceof TemplateError) || path.length === 0 || err.valuePath) throw err;
    throw new TemplateError(`${err.message} (in ${formatPath(path)})`, {
      source: err.source,
      position: err.position,
      path: err.path,
      valuePath: path,
      cause: err,
    });
  }
}

/** `["with", "items", 0]` → `with.items[0]`, the way YAML authors read field paths. */
function formatPath(path: (string | number)[]): string {
  if (path.length === 0) return "the value";
  return path.map((key, i) => typeof key === "number" ? `[${key}]` : i === 0 ? key : `.${key}`).join("");
}
