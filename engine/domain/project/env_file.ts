/**
 * Parsing of env files (`.env`): `NAME=value` lines, `#` comments, optional `export `, single quotes taken
 * literally, double quotes with `\n`, `\t`, `\"` and `\\` escapes.
 *
 * @module
 */

import type { Diagnostic } from "../diagnostics.ts";

const LINE_RE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;
const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", '"': '"', "\\": "\\" };

export interface EnvFileResult {
  values: Record<string, string>;
  diagnostics: Diagnostic[];
}

/** Parses the text of an env file; each malformed line becomes a diagnostic and the rest still load. */
export function parseEnvFile(file: string, text: string): EnvFileResult {
  const values: Record<string, string> = {};
  const diagnostics: Diagnostic[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*(#|$)/.test(raw)) return;
    const match = LINE_RE.exec(raw);
    const value = match ? parseValue(match[2]) : undefined;
    if (!match || value === undefined) {
      const col = raw.search(/\S/) + 1;
      const message = match
        ? `unterminated quote in the value of ${match[1]}`
        : `expected NAME=value, found ${JSON.stringify(raw.trim().slice(0, 60))}`;
      diagnostics.push({ severity: "error", file, line: i + 1, col, path: match?.[1] ?? "(root)", message });
      return;
    }
    values[match[1]] = value;
  });
  return { values, diagnostics };
}

function parseValue(raw: string): string | undefined {
  const quote = raw[0];
  if (quote === "'") {
    const end = raw.indexOf("'", 1);
    return end < 0 ? undefined : raw.slice(1, end);
  }
  if (quote === '"') {
    let out = "";
    for (let i = 1; i < raw.length; i++) {
      const c = raw[i];
      if (c === '"') return out;
      if (c === "\\" && i + 1 < raw.length) out += ESCAPES[raw[++i]] ?? `\\${raw[i]}`;
      else out += c;
    }
    return undefined;
  }
  // Unquoted: a `#` after white space starts a comment.
  return raw.replace(/\s+#.*$/, "").trim();
}
