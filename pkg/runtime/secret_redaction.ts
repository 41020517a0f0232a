/**
 * Keeps a call's env values out of what the runtime reports about it. A tool that prints or throws a value
 * it was granted (`console.log(Deno.env.get("API_KEY"))`, `throw new Error("bad key " + key)`) would
 * otherwise put the secret into the logs stream and, through the failure, into the task's state and
 * history. Each occurrence of a granted value is replaced by {@linkcode REDACTED} in the call's log lines
 * and in its failure's message and details (its cause, the tool's own error, is dropped for the same
 * reason). The tool's output is left alone: it is data the workflow asked for, not a report.
 *
 * @module
 */
import { ToolFailure } from "./tool_failure.ts";

export const REDACTED = "[redacted]";

/**
 * Values shorter than this are not redacted: masking every "1" or "true" in a log would destroy it, and
 * values that short are not secrets worth the name.
 */
export const MIN_SECRET_LENGTH = 6;

/** Replaces the env values of one call in a text. */
export type Redactor = (text: string) => string;

/**
 * A value as the logs may spell it: as is, escaped in a JSON string (`JSON.stringify(config)`) and in a quoted
 * string of `console.log`/`Deno.inspect` (`console.log({ password })`, a thrown non-Error value), which escape
 * `\`, quotes and control characters; and each line of a value of several lines the same three ways, since
 * `console.log` prints a long string of several lines as one quoted piece per line (a PEM key). Before
 * (outside break attempt brk38), only the value as is was masked: a password holding `\` or `"`, or a key of
 * several lines, went into the logs whole in an object a tool logged.
 */
function spellings(value: string): string[] {
  const lines = value.includes("\n") ? value.split(/\r?\n/) : [];
  return [value, ...lines].flatMap((piece) => [
    piece,
    JSON.stringify(piece).slice(1, -1),
    Deno.inspect(piece).slice(1, -1),
  ]);
}

/** A redactor for the values of `env`, or undefined when none is long enough to be a secret. */
export function redactorFor(env: Readonly<Record<string, string>>): Redactor | undefined {
  // Longest first, so a value that contains another is masked whole.
  const secrets = [...new Set(Object.values(env).flatMap(spellings))]
    .filter((value) => value.length >= MIN_SECRET_LENGTH)
    .sort((a, b) => b.length - a.length);
  if (secrets.length === 0) return undefined;
  return (text) => {
    let out = text;
    for (const secret of secrets) {
      if (out.includes(secret)) out = out.replaceAll(secret, REDACTED);
    }
    return maskCutEnd(out, secrets);
  };
}

/**
 * The parts of a URL that may hold a key (`?api_key={{ .env.KEY }}`, `https://user:key@host`), as given and
 * as a URL spells them: its query's values, its user and password. Failures quote a server's URL.
 */
export function urlSecretValues(url: string | undefined): string[] {
  const parsed = url ? URL.parse(url) : null;
  if (!parsed) return [];
  return [...parsed.searchParams.values(), parsed.username, parsed.password]
    .flatMap((value) => value ? [value, encodeURIComponent(value)] : []);
}

/**
 * `text` with a secret's beginning at its very end masked: the host thread cuts the line that reaches a call's
 * log budget (worker_host.ts `sendLog`), maybe inside a value, and before (outside break attempt brk38) the
 * value's first part went into the logs. The beginning must be at least {@linkcode MIN_SECRET_LENGTH} long.
 */
function maskCutEnd(text: string, secrets: string[]): string {
  // A cut inside a character of several bytes ends the line with U+FFFD.
  const end = text.endsWith("\uFFFD") ? text.length - 1 : text.length;
  for (const secret of secrets) {
    const at = text.lastIndexOf(secret.slice(0, MIN_SECRET_LENGTH), end - MIN_SECRET_LENGTH);
    if (at >= 0 && end - at < secret.length && secret.startsWith(text.slice(at, end))) {
      return text.slice(0, at) + REDACTED;
    }
  }
  return text;
}

/**
 * The failure with every secret masked in its message and details. When something was masked, the tool's
 * own error (the failure's cause, with the same message) is not kept; otherwise the failure is returned as is.
 */
export function redactFailure(failure: ToolFailure, redact: Redactor): ToolFailure {
  const message = redact(failure.message);
  const details = failure.details === undefined ? undefined : redactJson(failure.details, redact);
  if (message === failure.message && JSON.stringify(details) === JSON.stringify(failure.details)) {
    return failure;
  }
  return new ToolFailure(failure.code, message, details === undefined ? {} : { details });
}

/** A JSON-like value with every string (keys included) redacted. */
export function redactJson(value: unknown, redact: Redactor): unknown {
  if (typeof value === "string") return redact(value);
  if (Array.isArray(value)) return value.map((item) => redactJson(item, redact));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [redact(key), redactJson(item, redact)]),
    );
  }
  return value;
}
