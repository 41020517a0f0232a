/**
 * Finds the dynamic imports `deno info` cannot see, by parsing each module of a tool's graph with
 * `@babel/parser`: an `import(...)` whose specifier is not one string literal, or whose options are anything
 * but `{ with: { type: "json" } }`.
 *
 * Why a parser and not a text scan: a scan has to guess where comments and strings end, and an attacker
 * chooses the bytes. A `//` comment ended by CR, U+2028 or U+2029, `...import(spec)` or a unicode escape
 * fooled the earlier regular expression. The parser applies the language's own rules, so whatever it calls
 * an `ImportExpression` is one, and a file it cannot parse is refused rather than guessed at.
 *
 * @module
 */
import { parse, type ParserPlugin } from "@babel/parser";
import { extname } from "node:path";
import { budgetedSource, ParseBudgetExceeded } from "./parse_budget.ts";
import { ToolFailure } from "./tool_failure.ts";

/** Where a refused expression is, 1-based like an editor's. */
export interface SourcePosition {
  line: number;
  column: number;
}

interface Node {
  type: string;
  loc?: { start: { line: number; column: number } } | null;
  [key: string]: unknown;
}

// Keys that hold positions or comments, never code; skipping them keeps the walk small.
const NOT_CODE = new Set([
  "loc",
  "start",
  "end",
  "range",
  "extra",
  "comments",
  "leadingComments",
  "trailingComments",
  "innerComments",
  "tokens",
]);

/** A specifier written as a string literal, static or dynamic, where the parser found it. */
export interface LiteralImport extends SourcePosition {
  specifier: string;
}

/** What the parser found in one module. */
export interface ModuleScan {
  /** Every literal specifier (static imports, re-exports, literal `import()`). */
  imports: LiteralImport[];
  /**
   * The module names Node's `process` (an identifier or a string `process`, anywhere): its sandbox must
   * set `process` up before the realm is frozen (tool_worker.ts). Over-counting costs only a cold start.
   */
  namesProcess: boolean;
}

/**
 * Refuses an `import(...)` whose specifier is not a string literal, an import with options other than a
 * JSON type attribute, and a module that does not parse. Returns every literal specifier it saw (static
 * imports and re-exports too), so that the caller can check `deno info` saw the same ones.
 *
 * @throws {ToolFailure} `tool_import_refused`, naming `file:line:col`.
 */
export function findComputedImport(executePath: string, file: string, source: string): LiteralImport[] {
  return scanModule(executePath, file, source).imports;
}

/** {@linkcode findComputedImport}, and whether the module names Node's `process`. */
export function scanModule(
  executePath: string,
  file: string,
  source: string,
  mediaType?: string,
): ModuleScan {
  let program: Node;
  try {
    program = parse(budgetedSource(source), {
      sourceType: "module",
      plugins: mediaType === undefined ? pluginsFor(file) : pluginsForMediaType(mediaType),
      // Errors are refusals: no recovery, no guessing what the code meant.
      errorRecovery: false,
      // Comments are skipped by the walk, and attaching them costs more than reads: each comment waits on a
      // stack until its node ends, and each `<` of a TypeScript expression (type arguments tried first)
      // copies that stack, so 30,000 commented members of one object took the parse 85 s (brk43).
      attachComment: false,
    }).program as unknown as Node;
  } catch (cause) {
    if (cause instanceof ParseBudgetExceeded) {
      throw refusedAt(
        executePath,
        file,
        positionAt(source, cause.index),
        `the import check gave up parsing it: ${cause.message} (nested TypeScript type assertions, ` +
          "`<T>(<T>(…))`, make the parser try each level twice; write `(x as T)` instead)",
        cause,
      );
    }
    const at = (cause as { loc?: { line: number; column: number } }).loc;
    throw refusedAt(
      executePath,
      file,
      at ? { line: at.line, column: at.column + 1 } : { line: 1, column: 1 },
      `the import check cannot parse it (${(cause as Error).message})`,
      cause,
    );
  }
  const found: LiteralImport[] = [];
  let namesProcess = false;
  const stack: unknown[] = [program];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
      continue;
    }
    if (!isNode(value)) continue;
    if ((value.type === "Identifier" && value.name === "process") || value.value === "process") {
      namesProcess = true;
    }
    if (value.type === "ImportExpression") {
      const literal = checkImportExpression(executePath, file, value);
      // `import()` gives the module's namespace, with every named export.
      checkNamedExports(executePath, file, value, literal.specifier, undefined);
      found.push(literal);
    } else if (STATIC_IMPORTS.has(value.type) && isNode(value.source)) {
      const specifier = String(value.source.value);
      checkNamedExports(executePath, file, value, specifier, value.specifiers as Node[] | undefined);
      found.push({ specifier, ...positionOf(value) });
    }
    for (const key in value) if (!NOT_CODE.has(key)) stack.push(value[key]);
  }
  return { imports: found, namesProcess };
}

const STATIC_IMPORTS = new Set(["ImportDeclaration", "ExportAllDeclaration", "ExportNamedDeclaration"]);

/**
 * Named exports of Node's built-ins that no patch of the module's object reaches (a named import is bound to
 * Deno's function, taken when the module was set up), each with why it is refused (outside break attempt
 * brk44): `tls.setDefaultCACertificates` made every later call's connections trust the authority one call
 * chose (the module's object refuses it at run time, node_knobs.ts); `node:process`'s named exports are the
 * functions and objects its default export held before the sandbox guarded them (tool_worker.ts), so
 * `import { getBuiltinModule } from "node:process"` reached every refused built-in (`node:vm` ran a string as
 * code), `nextTick` ran an ended call's ticks unnoted after its reset (late_reset_test.ts), and `argv` held
 * the sandbox's command line. Refused are the ways to the binding: a named import or re-export of it, and the
 * namespace (`import * as`, `export *`, `import()`), which holds every export.
 */
const REFUSED_NAMED_EXPORTS = new Map<string, Map<string, string>>([
  ["tls", new Map([["setDefaultCACertificates", "it changes the whole sandbox process, not only the call"]])],
  [
    "process",
    new Map([
      ["getBuiltinModule", "it is Node's own, which reaches the built-ins the sandbox refuses"],
      ["nextTick", "it is Node's own, whose callbacks the sandbox does not follow past the call"],
      ["argv", "it holds the sandbox's command line"],
      ["stdin", "it is Node's own, not the sandbox's empty stream"],
      ...["abort", "chdir", "setegid", "seteuid", "setgid", "setuid"].map((name): [string, string] => [
        name,
        "it is Node's own, not the sandbox's refusal",
      ]),
    ]),
  ],
]);

/** Refuses a way to a named export of {@linkcode REFUSED_NAMED_EXPORTS}; `specifiers` undefined: the namespace. */
function checkNamedExports(
  executePath: string,
  file: string,
  node: Node,
  specifier: string,
  specifiers: Node[] | undefined,
): void {
  const refusedNames = REFUSED_NAMED_EXPORTS.get(specifier.replace(/^node:/, ""));
  // A type-only import or re-export is erased before the module runs.
  if (refusedNames === undefined || node.importKind === "type" || node.exportKind === "type") return;
  const whole = node.type === "ImportExpression" || node.type === "ExportAllDeclaration";
  const reached = whole
    ? "*"
    : (specifiers ?? []).map(importedName).find((name) => name === "*" || refusedNames.has(name));
  if (reached === undefined) return;
  const why = reached === "*"
    ? `the namespace of "${specifier}" is refused: it holds ${[...refusedNames.keys()].join(", ")}, which ` +
      `the sandbox refuses (${[...new Set(refusedNames.values())].join("; ")})`
    : `"${reached}" of "${specifier}" is refused: ${refusedNames.get(reached)}`;
  throw refusedAt(
    executePath,
    file,
    positionOf(node),
    `${why}; import its default export (import x from "${specifier}") or the other names you use`,
  );
}

/** The export a specifier of an import or re-export names: `*` for a namespace. */
function importedName(specifier: Node): string {
  if (specifier.type === "ImportNamespaceSpecifier" || specifier.type === "ExportNamespaceSpecifier") {
    return "*";
  }
  // `import x from` and `export { default } from`: the default export.
  if (specifier.type === "ImportDefaultSpecifier") return "default";
  const named = (specifier.type === "ImportSpecifier" ? specifier.imported : specifier.local) as Node;
  return String(named.type === "Identifier" ? named.name : named.value);
}

function checkImportExpression(executePath: string, file: string, node: Node): LiteralImport {
  const at = positionOf(node);
  const source = node.source as Node;
  if (node.phase != null) {
    throw refusedAt(executePath, file, at, `import.${String(node.phase)}() is refused`);
  }
  // `import(("x"))` is a literal to the parser but not to every reader of the code: refused, not argued.
  if (source.type !== "StringLiteral" || (source.extra as { parenthesized?: boolean })?.parenthesized) {
    throw refusedAt(
      executePath,
      file,
      at,
      "import() with a computed specifier is refused; use a static import or a string literal",
    );
  }
  const literal = { specifier: String(source.value), ...at };
  const options = node.options as Node | null | undefined;
  if (options == null) return literal;
  if (!isJsonAttribute(options) || !String(source.value).endsWith(".json")) {
    throw refusedAt(
      executePath,
      file,
      at,
      'import() options are refused, except { with: { type: "json" } } for a .json file',
    );
  }
  return literal;
}

/** `{ with: { type: "json" } }`, written with literals only. */
function isJsonAttribute(options: Node): boolean {
  const only = (node: Node, key: string): Node | undefined => {
    if (node.type !== "ObjectExpression") return undefined;
    const props = node.properties as Node[];
    if (props.length !== 1) return undefined;
    const [prop] = props;
    if (prop.type !== "ObjectProperty" || prop.computed) return undefined;
    const name = (prop.key as Node).type === "Identifier"
      ? (prop.key as Node).name
      : (prop.key as Node).type === "StringLiteral"
      ? (prop.key as Node).value
      : undefined;
    return name === key ? prop.value as Node : undefined;
  };
  const attributes = only(options, "with");
  const type = attributes && only(attributes, "type");
  return type?.type === "StringLiteral" && type.value === "json";
}

/**
 * The syntax Deno runs a module as, from `deno info`'s media type: not from the file's name. A module with no
 * extension is TypeScript to Deno, and was parsed here as JavaScript: `a <T>` then `/import(y)/g` is a
 * regular expression to JavaScript and a computed `import(y)` to TypeScript, which ran a `data:` URL built at
 * run time (outside break attempt, D1).
 */
function pluginsForMediaType(mediaType: string): ParserPlugin[] {
  switch (mediaType) {
    case "TypeScript":
    case "Mts":
    case "Dts":
    case "Dmts":
      return ["typescript"];
    case "TSX":
      return ["typescript", "jsx"];
    case "JSX":
      return ["jsx"];
    case "JavaScript":
    case "Mjs":
      return [];
    default:
      throw new Error(`no parser for media type ${mediaType}: the media types allowed and parsed must agree`);
  }
}

/** By the file's extension: for a module `deno info` has not typed (the import check's own tests). */
function pluginsFor(file: string): ParserPlugin[] {
  switch (extname(file).toLowerCase()) {
    case ".ts":
    case ".mts":
      return ["typescript"];
    case ".tsx":
      return ["typescript", "jsx"];
    case ".jsx":
      return ["jsx"];
    default:
      return [];
  }
}

function isNode(value: unknown): value is Node {
  return typeof value === "object" && value !== null && typeof (value as Node).type === "string";
}

/** The 1-based line and column of `index` in `source`, line breaks counted as JavaScript counts them. */
function positionAt(source: string, index: number): SourcePosition {
  const lines = source.slice(0, index).split(/\r\n|[\r\n\u2028\u2029]/);
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

function positionOf(node: Node): SourcePosition {
  const start = node.loc?.start;
  return start ? { line: start.line, column: start.column + 1 } : { line: 1, column: 1 };
}

function refusedAt(
  executePath: string,
  file: string,
  at: SourcePosition,
  why: string,
  cause?: unknown,
): ToolFailure {
  return new ToolFailure(
    "tool_import_refused",
    `Tool module ${executePath}: ${file}:${at.line}:${at.column}: ${why}`,
    {
      cause,
      details: { executePath, file, line: at.line, column: at.column },
    },
  );
}
