/**
 * The id of a workflow file that does not parse, read from its text, so that references to it are not
 * reported as "unknown workflow" on top of the file's own syntax error.
 *
 * @module
 */

import { ID_PATTERN } from "../ids.ts";

/**
 * A top-level `id:` line: at column 0, a plain or quoted scalar, an optional comment. At column 0 it cannot be
 * inside a block scalar or a nested mapping of the top-level one.
 */
const TOP_LEVEL_ID = /^id:[ \t]*(["']?)([^"'#\s]+)\1[ \t]*(?:#.*)?$/gm;

const VALID_ID = new RegExp(ID_PATTERN);

/**
 * The workflow id a file's text declares on a top-level `id:` line, or `undefined` when there is no such line,
 * the lines disagree, or the id is not a valid one. Workflow files have no naming convention to fall back on.
 */
export function recoverWorkflowId(text: string): string | undefined {
  const ids = new Set([...text.matchAll(TOP_LEVEL_ID)].map((m) => m[2]));
  if (ids.size !== 1) return undefined;
  const [id] = ids;
  return VALID_ID.test(id) ? id : undefined;
}
