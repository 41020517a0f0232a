/**
 * Parsing of `use:` references: `tool(id=X)`, `agent(id=X)`, `workflow(id=X)`, `tool(file=./x.yaml)`,
 * `agent(file=./x.yaml)`.
 *
 * @module
 */

import { USE_PATTERN } from "../task/schema.ts";

export interface UseReference {
  kind: "tool" | "agent" | "workflow";
  by: "id" | "file";
  value: string;
}

const ACCEPTED = new RegExp(USE_PATTERN);
const PARTS = /^(tool|agent|workflow)\((id|file)=(.+)\)$/;

/** Parses a `use:` value; `undefined` when it is not one of the accepted forms. */
export function parseUse(use: string): UseReference | undefined {
  const match = ACCEPTED.test(use) ? PARTS.exec(use) : null;
  if (!match) return undefined;
  return { kind: match[1] as UseReference["kind"], by: match[2] as UseReference["by"], value: match[3] };
}
