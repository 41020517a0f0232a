/**
 * Keeps a tool's error stacks to the tool's own frames. A stack as V8 writes it also names the frames of the
 * sandbox that called the tool (`…/pkg/runtime/tool_worker.ts` in a checkout, the cache folder of a compiled
 * binary), which tells whoever reads the failure where Compozy is installed and how the host is laid out.
 * Each frame whose file is in the tool's project keeps its place, with the path relative to the project;
 * a frame in a file anywhere else is dropped; frames with no file (native code, Deno's and Node's built-ins)
 * are kept as they are. The lines before the first frame (the error's name and message) are the tool's and
 * kept whole.
 *
 * Done in the runtime on what the sandbox reported, so it holds whatever the tool set its `stack` to.
 *
 * @module
 */
import { dirname, isAbsolute, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { projectRoots } from "./grant_paths.ts";

/** A frame line: `at name (location)` or `at location`, V8's and SES's indentation alike. */
const FRAME = /^\s*at\s/;
/** A location's trailing `:line:column` (or `:line`). */
const POSITION = /:\d+(?::\d+)?$/;

/**
 * `stack` with every frame outside `root` dropped and the paths of those inside made relative to it.
 *
 * @example
 * ```ts
 * import { redactStack } from "./stack_redaction.ts";
 * const stack = "Error: no\n    at run (file:///srv/p/tools/a.ts:3:9)\n    at handle (/opt/compozy/tool_worker.ts:1:1)";
 * console.assert(redactStack(stack, "/srv/p") === "Error: no\n    at run (tools/a.ts:3:9)");
 * ```
 */
export function redactStack(stack: string, root: string): string {
  const out: string[] = [];
  let inFrames = false;
  for (const line of stack.split("\n")) {
    inFrames ||= FRAME.test(line);
    if (!inFrames) {
      out.push(line);
      continue;
    }
    const frame = redactFrame(line, root);
    if (frame !== undefined) out.push(frame);
  }
  return out.join("\n");
}

/** The frame with its path relative to `root`, itself if it names no file, undefined if outside `root`. */
function redactFrame(line: string, root: string): string | undefined {
  const wrapped = line.endsWith(")") && line.includes(" (");
  const start = wrapped ? line.lastIndexOf(" (") + 2 : line.search(/\bat\s/) + 3;
  const location = line.slice(start, wrapped ? -1 : undefined).trim();
  const position = location.match(POSITION)?.[0] ?? "";
  const file = filePath(location.slice(0, location.length - position.length));
  // Not a frame (a message line after the first frame) or a location with no file: nothing of the host.
  if (file === undefined) return FRAME.test(line) ? line : undefined;
  const path = relative(root, file);
  if (path === "" || path.startsWith("..") || isAbsolute(path)) return undefined;
  return `${line.slice(0, start)}${path}${position}${wrapped ? ")" : ""}`;
}

/** The absolute path a location names (a `file:` URL or a path), or undefined if it names no file. */
function filePath(location: string): string | undefined {
  if (location.startsWith("file://")) {
    try {
      return fileURLToPath(location);
    } catch {
      return "/"; // a file URL that cannot be read is outside any project: dropped
    }
  }
  return location.startsWith("/") ? location : undefined;
}

const ROOTS_CACHED = 256;
const rootOf = new Map<string, string>();

/**
 * The folder a tool's stack paths are relative to: its project (the innermost folder from the module's up
 * that holds a `compozy.yaml`), or the module's own folder when it belongs to none.
 */
export async function stackRoot(executePath: string): Promise<string> {
  const dir = dirname(executePath);
  const known = rootOf.get(dir);
  if (known !== undefined) return known;
  const roots = await projectRoots(dir);
  // The walk's roots all lie on the module's path up (a deployment's outer project too): the longest.
  const root = roots.reduce((inner, r) => (r.length > inner.length ? r : inner), "") || dir;
  if (rootOf.size >= ROOTS_CACHED) rootOf.clear();
  rootOf.set(dir, root);
  return root;
}

/** Redacts the stack of `error` and of each error in its `cause` chain, in place. */
export function redactErrorStacks(error: unknown, root: string): void {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (typeof e.stack === "string") e.stack = redactStack(e.stack, root);
  }
}
