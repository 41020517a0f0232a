/**
 * `compozy dev`'s check of model keys at start: an agent whose model's key variable is unset, empty or still
 * the placeholder of `.env.example` would fail its first run with a 401 (or a DNS error); saying so before
 * any run names the model, the variable and the file to set it in.
 *
 * @module
 */

import { relative } from "node:path";
import type { AgentModelConfig, ModelConfig, Provider } from "../engine/domain/project/mod.ts";
import type { Project } from "../engine/domain/project/types.ts";
import { isPlaceholderKey } from "../pkg/utils/placeholder_key.ts";

/** The variable each provider package reads when the model names no `api_key`. */
const DEFAULT_KEY_VARIABLE: Partial<Record<Provider, string>> = {
  openai: "OPENAI_API_KEY",
  anthropic: "ANTHROPIC_API_KEY",
  google: "GOOGLE_GENERATIVE_AI_API_KEY",
  groq: "GROQ_API_KEY",
};

/** The whole-value `{{ .env.NAME }}` form of `api_key`. */
const ENV_TEMPLATE = /^\{\{\s*\.env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

/**
 * One warning line per model in use whose key is missing, in the order agents name them.
 *
 * @example
 * ```ts
 * import { modelKeyWarnings } from "./model_key_check.ts";
 * declare const project: import("../engine/domain/project/types.ts").Project;
 * for (const line of modelKeyWarnings(project, Deno.env.toObject())) console.log(line);
 * ```
 */
export function modelKeyWarnings(project: Project, processEnv: Record<string, string>): string[] {
  const warnings = new Map<string, string>();
  const offline = [...project.models.values()].find((model) => model.provider === "mock")?.id;
  for (const { config } of agentsOf(project)) {
    const { name, model } = effectiveModel(project, config);
    if (!model.provider || warnings.has(name)) continue;
    const problem = keyProblem(model, project, processEnv);
    if (problem) warnings.set(name, describe(name, model.provider, problem, project, offline));
  }
  return [...warnings.values()];
}

function agentsOf(project: Project) {
  return [
    ...project.agents.values(),
    ...[...project.workflows.values()].flatMap((w) => [...w.agents.values()]),
  ];
}

function effectiveModel(project: Project, config: AgentModelConfig) {
  const base = config.$model ? project.models.get(config.$model) : undefined;
  const model: Partial<ModelConfig> = { ...base };
  for (const [field, value] of Object.entries(config)) {
    if (value !== undefined && field !== "$model") (model as Record<string, unknown>)[field] = value;
  }
  const name = config.$model && base
    ? `model '${config.$model}'`
    : `inline model ${model.provider}/${model.model}`;
  return { name, model };
}

interface KeyProblem {
  variable: string;
  state: "unset" | "empty" | "a placeholder";
}

function keyProblem(
  model: Partial<ModelConfig>,
  project: Project,
  processEnv: Record<string, string>,
): KeyProblem | undefined {
  const apiKey = model.api_key;
  const variable = apiKey === undefined
    ? DEFAULT_KEY_VARIABLE[model.provider!]
    : ENV_TEMPLATE.exec(apiKey)?.[1];
  if (variable === undefined) {
    // A literal key (or a template we do not read here) is checked for the placeholder only.
    return apiKey !== undefined && isPlaceholderKey(apiKey)
      ? { variable: "api_key", state: "a placeholder" as const }
      : undefined;
  }
  // The process environment wins over the env file (CONFIG.md); the project's env: map comes first of all.
  const value = project.env[variable] ?? processEnv[variable] ?? project.envFile[variable];
  const state: KeyProblem["state"] | undefined = value === undefined
    ? "unset"
    : value.trim() === ""
    ? "empty"
    : isPlaceholderKey(value)
    ? "a placeholder"
    : undefined;
  return state ? { variable, state } : undefined;
}

function describe(name: string, provider: string, problem: KeyProblem, project: Project, offline?: string) {
  const envFile = relative(Deno.cwd(), `${project.root}/${project.config.env_file ?? ".env"}`);
  const where = problem.variable === "api_key"
    ? `set a real key in ${relative(Deno.cwd(), project.file)}`
    : `set it in ${envFile} (copy .env.example) or in the environment`;
  const instead = offline
    ? `, or point the agent at model '${offline}' (provider: mock) to run without a key`
    : ", or use `provider: mock` to run without a key (docs/yaml-reference.md)";
  return `${name} (${provider}): ${problem.variable} is ${problem.state}; agents on it will fail until you ${where}${instead}`;
}
