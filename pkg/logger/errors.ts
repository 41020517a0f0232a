/** Errors of the logging set-up. Logging itself never throws into its caller; only configuring it can. */

/** A logging option or environment variable with a value Compozy does not understand. */
export class LoggerConfigError extends Error {
  override name = "LoggerConfigError";
  constructor(message: string, readonly option: string, readonly value: unknown) {
    super(message);
  }
}
