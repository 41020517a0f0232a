/**
 * Reading YAML files with positions: every value of a loaded file can be traced back to its line and column.
 *
 * Guards run before any value is built: files over {@linkcode MAX_FILE_BYTES} are refused unread, and alias
 * expansion is measured on the syntax tree (never expanded) so an alias bomb is refused at once, naming its
 * aliases.
 *
 * @module
 */

import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  visit,
  type YAMLError,
} from "yaml";
import process from "node:process";
import { type Diagnostic, type PathSegment, ROOT_PATH } from "../diagnostics.ts";
import { fsErrorText } from "../../../pkg/utils/fs_error_text.ts";

/** Files larger than this are refused before they are read. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;
/** How many values aliases may add to a file when expanded; past this a file is an alias bomb. */
export const MAX_ALIAS_EXPANSION = 100_000;
/**
 * How deep mappings and lists may nest in a file. The deepest real config (tasks of composites of parallels,
 * embedded JSON Schemas) stays far under it; a literal nested deeper would be refused later anyway (a tool's
 * output may nest 64 levels), and thousands of levels overflow the parser's stack.
 */
export const MAX_NESTING = 64;
/** Segments of a field path shown for a problem found deep inside a file. */
const SHOWN_DEEP_PATH = 6;

export type { PathSegment };

/** A parsed YAML file: its plain value and what is needed to locate any part of it. */
export interface YamlSource {
  file: string;
  text: string;
  doc: Document.Parsed;
  lines: LineCounter;
  value: unknown;
}

export type YamlReadResult =
  | { kind: "ok"; source: YamlSource }
  /** `text` is the file's text when it could be read (a file over the size limit is not). */
  | { kind: "invalid"; diagnostics: Diagnostic[]; text?: string }
  /**
   * Nothing there, or something that is not a file (`isNot`: a folder, a device, a pipe): said as such, "not
   * found" misled the author who sees it there.
   */
  | { kind: "missing"; isNot?: string };

/**
 * Reads and parses `file`; a missing file is a result, not an error, so the caller can say who referred to it.
 * A path the system cannot follow (a loop of symbolic links, a file used as a folder: ELOOP, ENOTDIR) or a
 * file it cannot read is a diagnostic at the file: thrown, it ended `compozy validate` with "internal error"
 * and `compozy dev --watch` with it.
 */
export async function readYamlFile(file: string): Promise<YamlReadResult> {
  let text: string;
  try {
    const info = await Deno.stat(file);
    if (!info.isFile) return { kind: "missing", isNot: notAFile(info) };
    if (info.size > MAX_FILE_BYTES) {
      const mb = (info.size / (1024 * 1024)).toFixed(1);
      return {
        kind: "invalid",
        diagnostics: [rootError(file, `file is ${mb} MB; files over 10 MB are refused`)],
      };
    }
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { kind: "missing" };
    return { kind: "invalid", diagnostics: [rootError(file, `cannot read the file: ${fsErrorText(err)}`)] };
  }
  return parseYaml(file, text);
}

/** The message for a `missing` read of the file the author wrote as `written`: "<what> not found: <written>". */
export function notThere(read: { isNot?: string }, what: string, written: string): string {
  return `${what} ${read.isNot ?? "not found"}: ${written}`;
}

/** What a path that is not a regular file is instead, as said in a diagnostic. */
export function notAFile(info: Deno.FileInfo): string {
  return info.isDirectory
    ? "is a folder, not a file"
    : "is not a regular file (a device, a pipe or a socket)";
}

/**
 * What is wrong with the file a field names, as the field's message says it (`tool module <problem>: <path>`),
 * or undefined when it is a file: "not found", what it is instead ({@linkcode notAFile}), or "cannot be read
 * (<reason>)" for a path the file system cannot follow (through a file, ENOTDIR; a loop of links, ELOOP), the
 * author's typo too, said at the field rather than thrown.
 */
export async function statProblem(path: string): Promise<string | undefined> {
  try {
    const info = await Deno.stat(path);
    if (info.isFile) return undefined;
    return notAFile(info);
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? "not found" : `cannot be read (${fsErrorText(err)})`;
  }
}

/** Parses YAML text; syntax errors, duplicate keys and alias bombs become diagnostics. */
export function parseYaml(file: string, text: string): YamlReadResult {
  const lines = new LineCounter();
  const doc = withoutProcessEnv(() =>
    parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true, uniqueKeys: true })
  );
  if (doc.errors.length > 0) {
    // After the first syntax error the parser is guessing, and its later errors (2 to 6 for one bad
    // indent) repeat the first; duplicate keys are each a problem of their own.
    const duplicates = doc.errors.filter((e) => e.code === "DUPLICATE_KEY");
    const first = doc.errors.find((e) => e.code !== "DUPLICATE_KEY");
    const reported = first ? [...duplicates, first] : duplicates;
    return { kind: "invalid", diagnostics: reported.map((e) => syntaxDiagnostic(file, doc, lines, e)), text };
  }
  // Only a file with an alias (`*name`) needs the walk that measures them.
  const hasAliases = /\*[^\s,\]}*]/.test(text);
  const bomb = hasAliases ? findAliasBomb(file, doc, lines) : undefined;
  if (bomb) return { kind: "invalid", diagnostics: [bomb], text };
  const deep = findTooDeep(file, doc, lines, hasAliases);
  if (deep) return { kind: "invalid", diagnostics: [deep], text };
  // The measurement above is exact; yaml's own counter stays on as a second fence.
  const value = doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSION });
  return { kind: "ok", source: { file, text, doc, lines, value } };
}

/**
 * yaml reads `process.env.LOG_TOKENS` for every token it parses (a debugging switch); under Deno each read is
 * a permission-checked call into the runtime, which made parsing about 40% slower. Parsing is synchronous,
 * so the environment is swapped for an empty one for exactly its duration and nothing else can observe it.
 */
function withoutProcessEnv<T>(parse: () => T): T {
  const env = Object.getOwnPropertyDescriptor(process, "env");
  if (!env?.configurable) return parse();
  Object.defineProperty(process, "env", { value: {}, configurable: true, writable: true });
  try {
    return parse();
  } finally {
    Object.defineProperty(process, "env", env);
  }
}

function rootError(file: string, message: string): Diagnostic {
  return { severity: "error", file, line: 1, col: 1, path: ROOT_PATH, message };
}

function syntaxDiagnostic(file: string, doc: Document.Parsed, lines: LineCounter, e: YAMLError): Diagnostic {
  const { line, col } = lines.linePos(e.pos[0]);
  const path = pathAtOffset(doc, e.pos[0]);
  // yaml turns its own stack overflow (thousands of nested `[`) into an error like any other.
  const overflow = e.message.includes("Maximum call stack size exceeded");
  const message = e.code === "DUPLICATE_KEY"
    ? `duplicate key "${path.at(-1)}"`
    : overflow
    ? tooDeepMessage()
    : `YAML syntax error: ${e.message}${INDENT_CODES.has(e.code) ? INDENT_HINT : ""}`;
  const sane = e.code === "DUPLICATE_KEY" ? path : saneSyntaxPath(path);
  return { severity: "error", file, line, col, path: deepPath(sane), message };
}

/** yaml's codes for what is nearly always a line indented one step too far or too little. */
const INDENT_CODES = new Set(["BAD_INDENT", "MULTILINE_IMPLICIT_KEY", "BLOCK_AS_IMPLICIT_KEY"]);
const INDENT_HINT = " (check the indentation of this line and the line above)";

/**
 * A broken document parses into odd keys (`format use:` from a line indented too far); the path stops at
 * the last key that is a real one, and names the mapping that holds the bad line, not the key before it.
 */
function saneSyntaxPath(path: PathSegment[]): PathSegment[] {
  const bad = path.findIndex((segment) => typeof segment === "string" && /[\s:]/.test(segment));
  if (bad < 0) return path;
  const kept = path.slice(0, bad);
  return typeof kept.at(-1) === "string" ? kept.slice(0, -1) : kept;
}

/** The path of the innermost node containing `offset`, for errors that yaml reports by offset only. */
function pathAtOffset(doc: Document.Parsed, offset: number): PathSegment[] {
  const path: PathSegment[] = [];
  let node: unknown = doc.contents;
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((p) => within(p.key, offset) || within(p.value, offset));
      if (!pair || !isScalar(pair.key)) return path;
      path.push(String(pair.key.value));
      if (within(pair.key, offset)) return path;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => within(item, offset));
      if (index < 0) return path;
      path.push(index);
      node = node.items[index];
    } else {
      return path;
    }
  }
}

function tooDeepMessage(): string {
  return `mappings and lists nest more than ${MAX_NESTING} levels deep here (a file may nest ${MAX_NESTING})`;
}

/** A field path as printed, cut after its first segments when it goes deep. */
function deepPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return ROOT_PATH;
  return path.length > SHOWN_DEEP_PATH ? `${formatPath(path.slice(0, SHOWN_DEEP_PATH))}…` : formatPath(path);
}

/**
 * The first mapping or list nested more than {@linkcode MAX_NESTING} levels deep, aliases followed (the alias
 * bomb check has bounded what they add), walked without recursion.
 */
function findTooDeep(
  file: string,
  doc: Document.Parsed,
  lines: LineCounter,
  hasAliases: boolean,
): Diagnostic | undefined {
  const anchors = new Map<string, Node>();
  if (hasAliases) {
    visit(doc, {
      Node(_key, node) {
        if (!isAlias(node) && node.anchor) anchors.set(node.anchor, node);
      },
    });
  }
  const stack: { node: unknown; depth: number; path: PathSegment[] }[] = [
    { node: doc.contents, depth: 0, path: [] },
  ];
  while (stack.length > 0) {
    const { node, depth, path } = stack.pop()!;
    const target = isAlias(node) ? anchors.get(node.source) : node;
    if (!isMap(target) && !isSeq(target)) continue;
    if (depth + 1 > MAX_NESTING) {
      const { line, col } = lines.linePos((node as Node).range?.[0] ?? 0);
      return { severity: "error", file, line, col, path: deepPath(path), message: tooDeepMessage() };
    }
    (target.items as unknown[]).forEach((item, i) => {
      if (isPair(item)) {
        const key = isScalar(item.key) ? String(item.key.value) : String(i);
        stack.push({ node: item.value, depth: depth + 1, path: [...path, key] });
      } else stack.push({ node: item, depth: depth + 1, path: [...path, i] });
    });
  }
  return undefined;
}

function within(node: unknown, offset: number): boolean {
  const range = (node as Node | null)?.range;
  return !!range && range[0] <= offset && offset < range[2];
}

/**
 * Measures what the aliases of `doc` would expand to, without expanding them, and refuses the file when they
 * would add more than {@linkcode MAX_ALIAS_EXPANSION} values or when an alias contains itself.
 */
function findAliasBomb(file: string, doc: Document.Parsed, lines: LineCounter): Diagnostic | undefined {
  // An alias refers to the last node before it carrying its anchor; `visit` walks in document order.
  const anchors = new Map<string, Node>();
  const aliases: { alias: Node & { source: string }; target: Node | undefined }[] = [];
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) aliases.push({ alias: node, target: anchors.get(node.source) });
      else if (node.anchor) anchors.set(node.anchor, node);
    },
  });
  if (aliases.length === 0) return undefined;
  const unresolved = aliases.find((a) => !a.target);
  if (unresolved) {
    const { line, col } = lines.linePos(unresolved.alias.range![0]);
    const name = unresolved.alias.source;
    const message = `unknown alias *${name}: no anchor &${name} before it`;
    return { severity: "error", file, line, col, path: ROOT_PATH, message };
  }

  const sizes = new Map<Node, number>();
  const open = new Set<Node>();
  const targetOf = new Map(aliases.map((a) => [a.alias, a.target]));
  const size = (node: unknown, followAliases: boolean): number => {
    if (isAlias(node)) {
      const target = targetOf.get(node);
      return followAliases && target ? size(target, true) : 1;
    }
    if (!isMap(node) && !isSeq(node)) return 1;
    if (followAliases && sizes.has(node)) return sizes.get(node)!;
    if (open.has(node)) return Infinity; // an alias inside the node its anchor names
    open.add(node);
    let total = 1;
    for (const item of node.items as unknown[]) {
      total += isPair(item)
        ? size(item.key, followAliases) + size(item.value, followAliases)
        : size(item, followAliases);
    }
    open.delete(node);
    if (followAliases) sizes.set(node, total);
    return total;
  };
  const added = size(doc.contents, true) - size(doc.contents, false);
  if (added <= MAX_ALIAS_EXPANSION) return undefined;

  const bySize = aliases
    .map((a) => ({ ...a, size: a.target ? size(a.target, true) : 1 }))
    .sort((a, b) => b.size - a.size);
  const worst = bySize[0];
  const names = [...new Set(bySize.map((a) => `*${a.alias.source}`))];
  const shown = names.slice(0, 5).join(", ") + (names.length > 5 ? `, … (${names.length} aliases)` : "");
  const { line, col } = lines.linePos(worst.alias.range![0]);
  const message = Number.isFinite(worst.size)
    ? `aliases ${shown} would expand to more than ${MAX_ALIAS_EXPANSION} values (*${worst.alias.source} alone to ${
      formatCount(worst.size)
    }); refused without expanding`
    : `alias *${worst.alias.source} refers to the node that defines &${worst.alias.source}; recursive aliases are refused`;
  return { severity: "error", file, line, col, path: ROOT_PATH, message };
}

function formatCount(n: number): string {
  return n < 1e9 ? String(n) : n.toExponential(1);
}

/** `["tasks", 2, "with", "city"]` → `tasks[2].with.city`; the empty path is `(root)`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const seg of path) out += typeof seg === "number" ? `[${seg}]` : out ? `.${seg}` : seg;
  return out || ROOT_PATH;
}

/**
 * Finds the line and column of the value (or of its key, with `at: "key"`) at `path`. A path that leads
 * nowhere (a merged or missing key) resolves to the nearest node that exists.
 */
export function locate(
  source: YamlSource,
  path: readonly PathSegment[],
  at: "key" | "value" = "value",
): { line: number; col: number } {
  const { doc, lines } = source;
  let node: unknown = doc.contents;
  let keyNode: unknown;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    const found = child(doc, node, seg);
    if (!found) break;
    [keyNode, node] = found;
  }
  if (isAlias(node)) node = node.resolve(doc);
  // An empty value (`with:` and nothing) has no position of its own worth showing; its key does.
  const empty = isScalar(node) && node.value === null && node.range?.[0] === node.range?.[1];
  const target = (at === "key" || empty || !node) && keyNode ? keyNode : node;
  const offset = (target as Node | null)?.range?.[0] ?? 0;
  const pos = lines.linePos(offset);
  return { line: Math.max(pos.line, 1), col: Math.max(pos.col, 1) };
}

function child(doc: Document.Parsed, node: unknown, seg: PathSegment): [unknown, unknown] | undefined {
  if (isSeq(node) && typeof seg === "number") {
    const item = node.items[seg];
    return item === undefined ? undefined : [item, item];
  }
  if (!isMap(node)) return undefined;
  for (const pair of node.items) {
    if (isScalar(pair.key) && String(pair.key.value) === String(seg)) return [pair.key, pair.value];
  }
  // Keys brought in by `<<: *base` live in the aliased map.
  for (const pair of node.items) {
    if (!isScalar(pair.key) || !isMergeKey(pair.key.value)) continue;
    const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
    for (const src of sources) {
      const found = child(doc, isAlias(src) ? src.resolve(doc) : src, seg);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * The line and column of character `position` of the string at `path`, when the string is written on one
 * line without escapes (so source and value line up); else the string's own position.
 */
export function locateInString(
  source: YamlSource,
  path: readonly PathSegment[],
  position: number,
): { line: number; col: number } {
  const start = locate(source, path);
  let node: unknown = source.doc.getIn(path, true);
  if (isAlias(node)) node = node.resolve(source.doc);
  if (!isScalar(node) || typeof node.value !== "string" || !node.range) return start;
  const raw = source.text.slice(node.range[0], node.range[1]);
  const quoted = node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE";
  const body = quoted ? raw.slice(1, -1) : raw;
  if (body !== node.value) return start;
  return { line: start.line, col: start.col + (quoted ? 1 : 0) + position };
}

/** With `merge: true`, yaml turns the `<<` key into a symbol described as `<<`. */
function isMergeKey(key: unknown): boolean {
  return key === "<<" || (typeof key === "symbol" && key.description === "<<");
}

/** Builds a diagnostic located at `path` in `source`. */
export function diagnosticAt(
  source: YamlSource,
  path: readonly PathSegment[],
  message: string,
  opts: { severity?: Diagnostic["severity"]; at?: "key" | "value" } = {},
): Diagnostic {
  const { line, col } = locate(source, path, opts.at);
  return {
    severity: opts.severity ?? "error",
    file: source.file,
    line,
    col,
    path: formatPath(path),
    message,
  };
}
