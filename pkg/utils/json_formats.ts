/**
 * JSON Schema `format`s for values that come from users, tools and models: ajv-formats' full formats, with
 * `url` checked in linear time. ajv-formats' `url` expression backtracks polynomially: a tool output of
 * `"http://" + "::".repeat(8000)` (16 KB) against `format: url` held the runtime's thread for 21.5 s, every
 * other call waiting (red team 7, R2). {@linkcode isUrl} accepts exactly the strings that expression
 * accepts (fuzzed against it in json_formats_test.ts), in one pass.
 *
 * Left to ajv-formats: the other formats. Red team 7 fuzzed each with 120 shapes at 4,000 and 16,000
 * characters and none grew more than tenfold (`url` grew 80-fold).
 *
 * @module
 */
import type { Ajv2020, FormatDefinition } from "ajv/dist/2020.js";
import { chargeSteps, stringSteps } from "./json_schema_budget.ts";
import addFormatsModule from "ajv-formats";

// ajv-formats is CommonJS: under Deno its default import is the function itself, typed as the module.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/**
 * ajv-formats' `url` (from https://gist.github.com/dperini/729294) is
 * `^(?:https?|ftp)://(?:\S+(?::\S*)?@)?HOST(?::\d{2,5})?(?:/[^\s]*)?$`, case-insensitive, Unicode. Its
 * user-info part is what backtracks: `\S+(?::\S*)?` is any run of non-space characters, so the expression
 * tried every split of the text before each failure. Here the user info is "any non-space run ending at an
 * `@`", so each `@` before the first space is a place where the host may start; the host and port are tried
 * at each such place with the expression's own host part (host characters include no `@`, so the places'
 * hosts never overlap and the whole costs one pass), and the path, "a `/` and no space to the end", is read
 * from where the last space is.
 */
const SCHEME = /^(?:https?|ftp):\/\//i;
const HOST_AND_PORT = new RegExp(
  String.raw`(?:(?!(?:10|127)(?:\.\d{1,3}){3})(?!(?:169\.254|192\.168)(?:\.\d{1,3}){2})` +
    String.raw`(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])` +
    String.raw`(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))` +
    String.raw`|(?:(?:[a-z0-9\u{00a1}-\u{ffff}]+-)*[a-z0-9\u{00a1}-\u{ffff}]+)` +
    String.raw`(?:\.(?:[a-z0-9\u{00a1}-\u{ffff}]+-)*[a-z0-9\u{00a1}-\u{ffff}]+)*` +
    String.raw`(?:\.(?:[a-z\u{00a1}-\u{ffff}]{2,})))(?::\d{2,5})?(?=\/|$)`,
  "iuy",
);
const SPACE = /\s/gu;
/** The last space character: each start either fails at once or reads one run of non-space characters. */
const LAST_SPACE = /\s\S*$/u;

/**
 * `format: url`, as ajv-formats defines it, in linear time.
 *
 * @example
 * ```ts
 * import { isUrl } from "./json_formats.ts";
 * console.assert(isUrl("https://user@example.com:8080/a?b=c") && !isUrl("http://10.0.0.1/"));
 * ```
 */
export function isUrl(text: string): boolean {
  const scheme = SCHEME.exec(text);
  if (scheme === null) return false;
  const start = scheme[0].length;
  SPACE.lastIndex = start;
  const firstSpace = SPACE.exec(text)?.index ?? text.length;
  let lastSpace: number | undefined;
  // Where the host may start: right after the scheme, or after an `@` that ends a non-empty, space-free
  // user info.
  for (let host = start, at = start; host !== -1;) {
    HOST_AND_PORT.lastIndex = host;
    if (HOST_AND_PORT.test(text)) {
      const end = HOST_AND_PORT.lastIndex;
      if (end === text.length) return true;
      lastSpace ??= text.search(LAST_SPACE);
      if (lastSpace < end) return true;
    }
    at = text.indexOf("@", at + 1);
    host = at !== -1 && at < firstSpace ? at + 1 : -1;
  }
  return false;
}

/**
 * Adds ajv-formats' full formats to `ajv`, with `url` as {@linkcode isUrl}. Each format reads its whole
 * string, at each of the string's checks: it takes the string's steps from the validation's budget first
 * (json_schema_budget.ts), and fails once the budget is spent (the validation then reports its budget).
 */
export function addLinearFormats(ajv: Ajv2020): Ajv2020 {
  addFormats(ajv);
  ajv.addFormat("url", isUrl);
  for (const [name, format] of Object.entries(ajv.formats)) {
    if (format === undefined || typeof format === "string" || format === true) continue;
    const definition = format instanceof RegExp || typeof format === "function"
      ? { validate: format }
      : format;
    const { validate } = definition;
    if (definition.async === true || typeof validate === "string") continue;
    const check = validate instanceof RegExp
      ? (data: string | number) => validate.test(String(data))
      : validate as (data: string | number) => boolean;
    ajv.addFormat(name, {
      ...definition,
      async: false,
      validate: (data: string | number) => chargeSteps(ajv, stringSteps(data)) && check(data),
    } as FormatDefinition<string>);
  }
  return ajv;
}
