/**
 * `compozy validate`'s check of tool code: each tool's module graph goes through the sandbox's import policy
 * (the same function the runtime calls before a tool runs), then `deno check`. A refused import, a syntax
 * error or a type error is an error at its file, line and column, instead of a failure at the first run.
 *
 * The policy is checked first: a graph it refuses (an `npm:` import, a file outside the tool's folder) would
 * only make `deno check` fail on the same import, less clearly.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Diagnostic } from "../engine/domain/diagnostics.ts";
import type { ToolDefinition } from "../engine/domain/project/mod.ts";
import { checkToolModule } from "../pkg/runtime/import_policy.ts";
import { ToolFailure } from "../pkg/runtime/tool_failure.ts";
import { denoExecutable } from "../pkg/runtime/deno_executable.ts";

/** Tools checked at once: each check is a `deno` process. */
const CONCURRENCY = 2;

/**
 * Diagnostics of every tool's code, in the order of `tools`; a module shared by tools is checked once.
 *
 * @example
 * ```ts ignore
 * const diagnostics = await checkToolCode([...project.tools.values()]);
 * ```
 */
export async function checkToolCode(tools: ToolDefinition[]): Promise<Diagnostic[]> {
  const paths = [...new Set(tools.map((tool) => tool.executePath))];
  const results: Diagnostic[][] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const index = next++;
      results[index] = await checkOne(paths[index]);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return results.flat();
}

async function checkOne(executePath: string): Promise<Diagnostic[]> {
  try {
    await checkToolModule(executePath);
  } catch (error) {
    if (!(error instanceof ToolFailure)) throw error;
    return [await policyDiagnostic(executePath, error)];
  }
  return await typeCheck(executePath);
}

async function policyDiagnostic(executePath: string, failure: ToolFailure): Promise<Diagnostic> {
  const details = (failure.details ?? {}) as {
    specifier?: string;
    file?: string;
    line?: number;
    column?: number;
  };
  const located = details.file && details.line
    ? { file: details.file, line: details.line, col: details.column ?? 1 }
    : locationInText(failure.message) ??
      (details.specifier ? await locateImport(executePath, details.specifier) : undefined);
  let message = firstLine(
    failure.message.replace(`Tool module ${executePath}: `, "").replace(
      `Tool module ${executePath} imports`,
      "import",
    )
      .replace(`Cannot load tool module ${executePath}: `, ""),
  );
  // Say the import as the author wrote it (`../x.ts`), not as it resolved (`file:///abs/x.ts`).
  if (located && "written" in located && details.specifier) {
    message = message.replace(`"${details.specifier}"`, `"${located.written}"`);
  }
  if (failure.code === "tool_import_refused") message += " (see docs/tool-authoring.md, Imports)";
  const { file, line, col } = located ?? { file: executePath, line: 1, col: 1 };
  return {
    severity: "error",
    file,
    line,
    col,
    path: "(tool module)",
    message: `${failure.code}: ${message}`,
  };
}

/** `at file:///x.ts:2:15`, as Deno's parser and type checker print positions. */
const AT_POSITION = /^\s*at (file:\/\/\S+?):(\d+):(\d+)\s*$/m;

function locationInText(text: string) {
  const match = AT_POSITION.exec(text);
  if (!match) return undefined;
  return { file: fileURLToPath(match[1]), line: Number(match[2]), col: Number(match[3]) };
}

function firstLine(text: string): string {
  return text.split("\n")[0].trim();
}

/** Import specifiers as written: `from "x"`, `import "x"`, `import("x")`. */
const IMPORT_LITERAL = /(?:\bfrom\s*|\bimport\s*\(?\s*)(["'])([^"'\n]+)\1/g;
/** Bound on the files searched for an import; a tool's folder is small. */
const MAX_FILES = 200;

/**
 * Where the import that resolves to `specifier` is written, searching the tool's local graph from its
 * module: the policy names the resolved specifier (`file:///abs/x.ts`, `npm:zod@3`), the user wrote
 * `../x.ts` or `npm:zod@3`.
 */
async function locateImport(executePath: string, specifier: string) {
  const queue = [executePath];
  const seen = new Set(queue);
  while (queue.length > 0 && seen.size <= MAX_FILES) {
    const file = queue.shift()!;
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue; // a module the policy could not read either; its own diagnostic says so
    }
    for (const match of text.matchAll(IMPORT_LITERAL)) {
      const written = match[2];
      const resolved = /^\.{1,2}\//.test(written) ? new URL(written, pathToFileURL(file)).href : written;
      const quote = match.index + match[0].length - written.length - 2;
      if (written === specifier || resolved === specifier) {
        return { ...position(file, text, quote + 1), written };
      }
      if (resolved.startsWith("file:") && !seen.has(fileURLToPath(resolved))) {
        seen.add(fileURLToPath(resolved));
        queue.push(fileURLToPath(resolved));
      }
    }
  }
  return undefined;
}

function position(file: string, text: string, offset: number) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { file, line, col: offset - before.lastIndexOf("\n") };
}

/** One diagnostic per `TS…` error (or parse error) `deno check` prints with its position. */
async function typeCheck(executePath: string): Promise<Diagnostic[]> {
  const out = await new Deno.Command(denoExecutable(), {
    args: ["check", "--quiet", "--no-config", "--no-lock", "--no-remote", "--no-npm", executePath],
    cwd: dirname(executePath),
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.success) return [];
  const report = new TextDecoder().decode(out.stderr);
  const diagnostics: Diagnostic[] = [];
  let message: string | undefined;
  for (const line of report.split("\n")) {
    const start = /^(TS\d+) \[ERROR\]: (.*)$/.exec(line) ??
      /^error: (?!Type checking failed)(.*)$/.exec(line);
    if (start) message = start.length === 3 ? `${start[1]}: ${start[2]}` : start[1];
    const at = locationInText(line);
    if (message && at) {
      diagnostics.push({ severity: "error", ...at, file: resolve(at.file), path: "(tool module)", message });
      message = undefined;
    }
  }
  if (diagnostics.length > 0) return diagnostics;
  // Nothing we could place: still an error, with what deno said.
  return [{
    severity: "error",
    file: executePath,
    line: 1,
    col: 1,
    path: "(tool module)",
    message: `deno check failed: ${firstLine(report.replace(/^error: /, "")) || `exit code ${out.code}`}`,
  }];
}
