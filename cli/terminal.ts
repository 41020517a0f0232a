/**
 * Terminal output: colour only when stdout is a terminal and NO_COLOR is unset, so that piped output and
 * CI logs stay plain text.
 *
 * @module
 */

export interface Paint {
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  blue(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

const codes = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;

const COLOURED: Paint = {
  red: codes(31, 39),
  green: codes(32, 39),
  yellow: codes(33, 39),
  blue: codes(34, 39),
  dim: codes(2, 22),
  bold: codes(1, 22),
};

const PLAIN: Paint = {
  red: (s) => s,
  green: (s) => s,
  yellow: (s) => s,
  blue: (s) => s,
  dim: (s) => s,
  bold: (s) => s,
};

/** The paint for stdout (or stderr), decided once per call site. */
export function paintFor(stream: { isTerminal(): boolean } = Deno.stdout): Paint {
  return stream.isTerminal() && !Deno.env.get("NO_COLOR") ? COLOURED : PLAIN;
}
