/**
 * The check every command that reads a project makes first: a folder without `compozy.yaml` is the likeliest
 * first mistake (a missing or mistyped `--cwd`, or `deno task compozy` run from the checkout), so it is named
 * with the way out instead of reported as a diagnostic of a file that is not there. So are a `--cwd` that
 * names a file (or goes through one), a folder the system will not open, and a `compozy.yaml` that is a
 * folder: before, the first two ended the command with "internal error" and a stack.
 *
 * @module
 */
import { join, relative } from "node:path";
import { PROJECT_FILE } from "../engine/domain/project/mod.ts";
import { fsErrorText } from "../pkg/utils/fs_error_text.ts";
import { CliError } from "./cli_error.ts";

const WAYS_OUT = [
  "Point at a project with --cwd <dir> (e.g. --cwd examples/hello),",
  "or create one with: compozy init <dir>",
];

/**
 * Throws a CliError naming `projectDir`, with the two ways out, when it is no project folder: it does not
 * exist, is a file, has no `compozy.yaml` file, or is a path the system cannot follow or read (its reason).
 */
export async function requireProjectDir(projectDir: string): Promise<void> {
  const where = shown(projectDir);
  const folder = await statOrExplain(projectDir, `cannot open ${where}`);
  if (!folder) throw new CliError(`${where} does not exist`, WAYS_OUT);
  if (!folder.isDirectory) throw new CliError(`${where} is a file, not a project folder`, WAYS_OUT);
  const file = await statOrExplain(join(projectDir, PROJECT_FILE), `cannot read ${PROJECT_FILE} in ${where}`);
  if (!file) throw new CliError(`no ${PROJECT_FILE} in ${where}`, WAYS_OUT);
  if (!file.isFile) throw new CliError(`${PROJECT_FILE} in ${where} is a folder, not a file`, WAYS_OUT);
}

/** The path's info, undefined when nothing is there; any other failure (ENOTDIR, ELOOP, EACCES) is said. */
async function statOrExplain(path: string, what: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new CliError(`${what}: ${fsErrorText(error)}`, WAYS_OUT, undefined, { cause: error });
  }
}

/** `projectDir` relative to where the command runs when it is below it, as written otherwise. */
function shown(projectDir: string): string {
  const near = relative(Deno.cwd(), projectDir);
  return near.startsWith("..") ? projectDir : near || ".";
}
