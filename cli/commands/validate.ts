/**
 * `compozy validate`: checks the project in the working directory and prints every diagnostic, the code of
 * its tools included (the sandbox's import policy, then `deno check`), and the tools each reachable MCP server
 * lists (an unreachable one is a warning).
 *
 * @module
 */

import { checkProject } from "../../engine/domain/project/mod.ts";
import { cleanForTerminal } from "../../pkg/logger/formatters.ts";
import { codeFrame, needsFrame } from "../code_frame.ts";
import { diagnosticLine } from "../diagnostics_output.ts";
import { listMcpTools } from "../mcp_probe.ts";
import { requireProjectDir } from "../project_dir.ts";
import { checkToolCode } from "../tool_code_check.ts";

export interface ValidateOptions {
  /** The project directory; file names are printed relative to it. */
  cwd: string;
}

/**
 * Prints one diagnostic per line (`<file>:<line>:<col>: <field path>: <message>`, warnings marked
 * `warning:`) and returns the exit code: 1 when any diagnostic is an error, else 0.
 */
export async function runValidate(opts: ValidateOptions): Promise<number> {
  await requireProjectDir(opts.cwd);
  const mcpTools: string[] = [];
  const diagnostics = await checkProject(opts.cwd, {
    checkToolCode,
    probeMcp: async (server) => {
      const tools = await listMcpTools(server);
      mcpTools.push(`mcp server ${server.id}: ${tools.length ? tools.join(", ") : "no tools"}`);
      return tools;
    },
  });
  const colour = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
  for (const d of diagnostics) {
    const line = diagnosticLine(d, opts.cwd);
    const paint = d.severity === "error" ? RED : YELLOW;
    (d.severity === "error" ? console.error : console.warn)(colour ? `${paint}${line}${RESET}` : line);
    if (needsFrame(d)) {
      codeFrame(d.file, d.line, d.col).forEach((frame) => console.error(cleanForTerminal(frame)));
    }
  }
  // An MCP server names its own tools: a server is not the project's author.
  for (const line of mcpTools.sort()) console.log(cleanForTerminal(line));
  const errors = diagnostics.filter((d) => d.severity === "error").length;
  const warnings = diagnostics.length - errors;
  if (errors === 0) console.log(`project is valid${warnings ? ` (${warnings} warning(s))` : ""}`);
  return errors > 0 ? 1 : 0;
}

const RED = "\x1b[31m";
const YELLOW = "\x1b[33m";
const RESET = "\x1b[0m";
