/**
 * A flag or file that holds JSON (`--input`, `--input-file`, `--payload`), read as the API reads a body: a
 * number a double cannot hold is refused by its pointer rather than sent rounded.
 *
 * @module
 */
import { CliError } from "./cli_error.ts";
import { InexactJsonNumberError, parseExactJson } from "../pkg/utils/exact_json.ts";

/**
 * The JSON value of `text`, which came from `where` (a flag or a file name).
 *
 * @throws {CliError} naming `where` when the text is not JSON or holds a number a double would change.
 */
export function parseJsonFlag(text: string, where: string): unknown {
  try {
    return parseExactJson(text);
  } catch (e) {
    const what = e instanceof InexactJsonNumberError
      ? "holds a number JSON cannot carry exactly"
      : "is not valid JSON";
    throw new CliError(
      `${where} ${what}: ${(e as Error).message}`,
      [`got: ${text.slice(0, 200)}`],
      undefined,
      {
        cause: e,
      },
    );
  }
}
