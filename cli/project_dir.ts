/**
 * The check every command that reads a project makes first: a folder without `compozy.yaml` is the likeliest
 * first mistake (a missing or mistyped `--cwd`, or `deno task compozy` run from the checkout), so it is named
 * with the way out instead of reported as a diagnostic of a file that is not there.
 *
 * @module
 */
import { join, relative } from "node:path";
import { PROJECT_FILE } from "../engine/domain/project/mod.ts";
import { CliError } from "./cli_error.ts";

/** Throws a CliError naming `projectDir` and the two ways out when it holds no `compozy.yaml`. */
export async function requireProjectDir(projectDir: string): Promise<void> {
  try {
    await Deno.stat(join(projectDir, PROJECT_FILE));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    const near = relative(Deno.cwd(), projectDir);
    const where = near.startsWith("..") ? projectDir : near || ".";
    throw new CliError(
      `no ${PROJECT_FILE} in ${where}`,
      [
        "Point at a project with --cwd <dir> (e.g. --cwd examples/hello),",
        "or create one with: compozy init <dir>",
      ],
      undefined,
      { cause: error },
    );
  }
}
