/**
 * How an agent's `tools:` names MCP tools: `mcp(id=X)` for every tool server X lists, `mcp(id=X, tool=Y)` for
 * one of them (one entry per tool wanted). Any other entry is the id of a tool of the project or workflow.
 *
 * @module
 */

/** Names a model can be given for a tool (the strictest provider's rule: OpenAI's function names). */
export const MODEL_TOOL_NAME_PATTERN = "^[A-Za-z0-9_-]{1,64}$";

/** Pattern of one entry of an agent's `tools:`: a tool id, `mcp(id=X)` or `mcp(id=X, tool=Y)`. */
export const AGENT_TOOL_PATTERN =
  "^([a-z0-9][a-z0-9_-]*|mcp\\(id=[a-z0-9][a-z0-9_-]*(, ?tool=[A-Za-z0-9_-]{1,64})?\\))$";

const MCP_PARTS = /^mcp\(id=([a-z0-9][a-z0-9_-]*)(?:, ?tool=([A-Za-z0-9_-]{1,64}))?\)$/;

/** An agent's use of an MCP server: all its tools (`tool` absent) or one. */
export interface McpToolReference {
  server: string;
  tool?: string;
}

/** Parses an entry of an agent's `tools:`; `undefined` when it names a tool of the project, not MCP. */
export function parseMcpToolReference(entry: string): McpToolReference | undefined {
  const match = MCP_PARTS.exec(entry);
  if (!match) return undefined;
  return match[2] === undefined ? { server: match[1] } : { server: match[1], tool: match[2] };
}

/**
 * The tools an agent wants of each MCP server: `undefined` for all of them, else the names, in order. An
 * agent that names a server both whole and by tool gets all of its tools.
 */
export function mcpSelections(entries: readonly string[]): Map<string, string[] | undefined> {
  const selections = new Map<string, string[] | undefined>();
  for (const entry of entries) {
    const ref = parseMcpToolReference(entry);
    if (!ref) continue;
    const known = selections.get(ref.server);
    if (ref.tool === undefined) selections.set(ref.server, undefined);
    else if (!selections.has(ref.server)) selections.set(ref.server, [ref.tool]);
    else if (known && !known.includes(ref.tool)) known.push(ref.tool);
  }
  return selections;
}
