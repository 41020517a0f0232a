/**
 * The CLI's one error type: a clear first line, optional details below it, and the exit code (1 for a user
 * error such as a bad flag, an invalid project or a refused request; 2 for an internal failure).
 *
 * @module
 */

export const EXIT_OK = 0;
export const EXIT_USER_ERROR = 1;
export const EXIT_INTERNAL = 2;

export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly details: string[] = [],
    readonly exitCode: number = EXIT_USER_ERROR,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
