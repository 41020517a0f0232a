/**
 * Checks of tools and agents: tool modules exist, `$model` names a project model, and an agent's tools resolve
 * wherever the agent runs.
 *
 * @module
 */

import type { AgentDefinition } from "../agent/definition.ts";
import { parseMcpToolReference } from "../mcp/tool_reference.ts";
import type { ToolDefinition } from "../tool/definition.ts";
import type { Workflow } from "../workflow/definition.ts";
import { type Analysis, type DiagnosticList, trusts } from "./analysis.ts";
import { isToolDefinition, lookupUse } from "./resolve_use.ts";
import type { LoadOptions } from "./loader.ts";
import { didYouMean } from "./suggest.ts";
import { statProblem } from "./yaml_source.ts";

export async function checkDefinitions(
  analysis: Analysis,
  diagnostics: DiagnosticList,
  opts: LoadOptions,
): Promise<void> {
  // A tool whose `execute` has a schema error has no module to look for.
  const tools = [...analysis.sites.keys()].filter(isToolDefinition).filter((t) =>
    trusts(analysis, t, "execute")
  );
  const found = await Promise.all(tools.map((tool) => checkToolModule(analysis, tool, diagnostics)));
  if (opts.checkToolCode) diagnostics.add(...await opts.checkToolCode(tools.filter((_, i) => found[i])));
  for (const [agent, workflows] of agentContexts(analysis)) {
    checkAgentModel(analysis, agent, diagnostics);
    checkBudgetPrice(analysis, agent, diagnostics);
    checkActionIds(analysis, agent, diagnostics);
    checkAgentTools(analysis, agent, workflows, diagnostics);
  }
}

/** True when the module exists; else reports it at `execute`. */
async function checkToolModule(
  analysis: Analysis,
  tool: ToolDefinition,
  diagnostics: DiagnosticList,
): Promise<boolean> {
  const site = analysis.sites.get(tool)!;
  const problem = await statProblem(tool.executePath);
  if (problem === undefined) return true;
  diagnostics.error(
    site.source,
    [...site.path, "execute"],
    `tool module ${problem}: ${tool.execute}`,
  );
  return false;
}

/**
 * Each agent with the workflows it runs in: its own workflow when it is declared in one; else every workflow
 * whose tasks use it (none when unused, and then its tools must be project tools).
 */
function agentContexts(analysis: Analysis): Map<AgentDefinition, Workflow[]> {
  const contexts = new Map<AgentDefinition, Workflow[]>();
  const declaredIn = new Map<AgentDefinition, Workflow>();
  for (const { workflow } of analysis.workflows) {
    for (const agent of workflow.agents.values()) declaredIn.set(agent, workflow);
  }
  for (const def of analysis.sites.keys()) {
    if (!isToolDefinition(def)) contexts.set(def, declaredIn.has(def) ? [declaredIn.get(def)!] : []);
  }
  for (const { workflow, tasks } of analysis.workflows) {
    for (const { task } of tasks) {
      if (task.type !== "basic") continue;
      const used = lookupUse(analysis.project, workflow, task.use);
      if (used?.kind !== "agent" || declaredIn.has(used.agent)) continue;
      const list = contexts.get(used.agent);
      if (list && !list.includes(workflow)) list.push(workflow);
    }
  }
  return contexts;
}

function checkAgentModel(analysis: Analysis, agent: AgentDefinition, diagnostics: DiagnosticList): void {
  // A `$model` left out for a schema error (or missing beside a config that lacks a required field) is unknown.
  if (trusts(analysis, agent, "config", "$model")) {
    checkModelRef(analysis, agent, agent.config.$model, ["config", "$model"], diagnostics);
  }
  const summarize = agent.memory?.summarize;
  if (typeof summarize === "object") {
    checkModelRef(analysis, agent, summarize.$model, ["memory", "summarize", "$model"], diagnostics);
  }
}

/** A `$model` (of the agent's config, or of its memory's summarizer) names a project model. */
function checkModelRef(
  analysis: Analysis,
  agent: AgentDefinition,
  ref: string | undefined,
  path: string[],
  diagnostics: DiagnosticList,
): void {
  const { models } = analysis.project;
  if (ref === undefined || models.has(ref) || analysis.broken.models.has(ref)) return;
  const site = analysis.sites.get(agent)!;
  const known = models.size ? `models: ${[...models.keys()].join(", ")}` : "the project declares no models";
  diagnostics.error(
    site.source,
    [...site.path, ...path],
    `unknown model "${ref}" (${known})${didYouMean(ref, models.keys())}`,
  );
}

/** `budget.max_cost` is checked against the model's `price`: without one it could never be. */
function checkBudgetPrice(analysis: Analysis, agent: AgentDefinition, diagnostics: DiagnosticList): void {
  // Without a trusted model and price, whether the agent has a price is unknown.
  const known = trusts(analysis, agent, "config", "$model") && trusts(analysis, agent, "config", "price");
  if (!known || agent.budget?.max_cost === undefined || agent.config.price) return;
  const ref = agent.config.$model;
  const model = ref === undefined ? undefined : analysis.project.models.get(ref);
  if (ref !== undefined && (!model || model.price || !trusts(analysis, model, "price"))) return;
  const site = analysis.sites.get(agent)!;
  diagnostics.error(
    site.source,
    [...site.path, "budget", "max_cost"],
    "needs a price on the agent's model (price: { input_per_million, output_per_million })",
  );
}

function checkAgentTools(
  analysis: Analysis,
  agent: AgentDefinition,
  workflows: Workflow[],
  diagnostics: DiagnosticList,
): void {
  const { project } = analysis;
  const site = analysis.sites.get(agent)!;
  (agent.tools ?? []).forEach((id, i) => {
    // MCP references are checked with the servers (check_mcp.ts).
    if (parseMcpToolReference(id)) return;
    const missingIn = workflows.length
      ? workflows.filter((w) => !w.tools.has(id) && !project.tools.has(id)).map((w) => w.id)
      : project.tools.has(id)
      ? []
      : ["(project)"];
    if (missingIn.length === 0) return;
    const where = workflows.length
      ? `workflow ${missingIn.map((w) => `"${w}"`).join(", ")} or the project`
      : "the project";
    const candidates = [...project.tools.keys(), ...workflows.flatMap((w) => [...w.tools.keys()])];
    diagnostics.error(
      site.source,
      [...site.path, "tools", i],
      `unknown tool "${id}": not declared in ${where}${didYouMean(id, candidates)}`,
    );
  });
}

function checkActionIds(analysis: Analysis, agent: AgentDefinition, diagnostics: DiagnosticList): void {
  const site = analysis.sites.get(agent)!;
  const first = new Map<string, number>();
  (agent.actions ?? []).forEach((action, i) => {
    const earlier = first.get(action.id);
    if (earlier === undefined) first.set(action.id, i);
    else {
      diagnostics.error(
        site.source,
        [...site.path, "actions", i, "id"],
        `duplicate action id "${action.id}" in agent "${agent.id}" (first at actions[${earlier}])`,
      );
    }
  });
}
