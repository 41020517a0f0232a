/**
 * `deno task compile`: `deno compile` of the CLI into `dist/compozy` (or `--output PATH`). The first compile
 * on a machine downloads Deno's runtime (denort); when that fails this says so in one line, with the way
 * out, instead of deno's four-level error chain and backtrace, and removes the output folder it left empty.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";

/** deno's own words when it cannot fetch denort. */
const DOWNLOAD_FAILED =
  /Setting up base binary|error sending request for url \((https:\/\/dl\.deno\.land\/[^)\s]+)\)/;

export interface CompileResult {
  code: number;
  /** What to print on stderr when the compile failed. */
  message?: string;
}

/**
 * Compiles `main.ts` to `output`; never throws for a failed compile, whose reason is in `message`.
 *
 * @example
 * ```ts ignore
 * const { code, message } = await compile("dist/compozy");
 * ```
 */
export async function compile(output: string, env: Record<string, string> = {}): Promise<CompileResult> {
  const folder = dirname(resolve(output));
  const existed = await exists(folder);
  const root = new URL("../", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    // `deno task check` type-checks; compiling again would only double the wait.
    args: ["compile", "-A", "--no-check", "--unstable-worker-options", "--output", output, "main.ts"],
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (out.success) return { code: 0 };
  const stderr = new TextDecoder().decode(out.stderr);
  if (!existed) await removeIfEmpty(folder);
  const download = DOWNLOAD_FAILED.exec(stderr);
  if (download) {
    const url = /https:\/\/dl\.deno\.land\/\S+?\.zip/.exec(stderr)?.[0] ?? "Deno's runtime (denort)";
    const chain = stderr.split(/\n\s*Stack backtrace:/)[0];
    const reason = chain.split("\n").map((l) => l.trim()).filter((l) => /^\d+: /.test(l)).at(-1)
      ?.replace(/^\d+: /, "");
    return {
      code: 1,
      message:
        `deno compile could not download ${url}${reason ? ` (${reason})` : ""}: it needs network once per ` +
        "Deno version; offline, set DENORT_BIN to a denort binary of the same version",
    };
  }
  return { code: out.code || 1, message: stderr.replace(/\n*Stack backtrace:[\s\S]*$/, "").trim() };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function removeIfEmpty(folder: string): Promise<void> {
  for await (const entry of Deno.readDir(folder)) {
    // deno's temporary file of a failed write is its own leftover: not a reason to keep the folder.
    if (!entry.name.includes(".tmp-")) return;
  }
  await Deno.remove(folder, { recursive: true });
}

const USAGE = `Usage: deno task compile [--output PATH]

Compiles the CLI with deno compile into PATH (default dist/compozy). Exit code: 0 compiled, 1 the compile
failed, 2 a bad option.`;

/** The output path, or undefined after printing the usage (`--help`); a bad option exits 2 naming it. */
function outputOrExit(argv: string[]): string | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        output: { type: "string", default: "dist/compozy" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    // parseArgs threw "Unknown option '--help'" with a stack (outside review api35).
    console.error(`error: ${(e as Error).message}\nRun with --help for the options.`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  return values.output!;
}

if (import.meta.main) {
  const output = outputOrExit(Deno.args);
  if (output === undefined) Deno.exit(0);
  const { code, message } = await compile(output);
  if (message) console.error(`error: ${message}`);
  Deno.exit(code);
}
