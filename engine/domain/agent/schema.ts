/**
 * Shapes of models and agents: an LLM configuration, its instructions, actions and the tools it may call.
 *
 * @module
 */

import { z } from "zod";
import { envField, idField, jsonSchemaField } from "../config_fields.ts";
import { AGENT_TOOL_PATTERN } from "../mcp/tool_reference.ts";

export const PROVIDERS = [
  "openai",
  "anthropic",
  "google",
  "groq",
  "ollama",
  "openai-compatible",
  "mock",
] as const;

/** One reply of the `mock` provider (pkg/runtime/agent/mock_model.ts): exactly one of text, output, tool_calls. */
const MockReplySchema = z.strictObject({
  text: z.string().describe("A text reply").optional(),
  output: z.unknown().describe("A JSON reply; an action's output schema checks it").optional(),
  tool_calls: z.array(z.strictObject({
    tool: idField("Id of one of the agent's tools"),
    input: z.record(z.string(), z.unknown()).describe("The tool's input; may hold templates").optional(),
  })).min(1).describe("Tools the model asks for; they run in the sandbox").optional(),
  usage: z.strictObject({
    input_tokens: z.number().int().min(0).optional(),
    output_tokens: z.number().int().min(0).optional(),
  }).describe("Tokens reported for this reply (default: one per 4 characters)").optional(),
}).refine((reply) => ["text", "output", "tool_calls"].filter((k) => Object.hasOwn(reply, k)).length === 1, {
  message: "a mock reply has exactly one of text, output or tool_calls",
}).describe("One scripted reply of the mock provider").meta({ id: "mock_reply" });

const MockScriptSchema = z.strictObject({
  replies: z.record(z.string(), z.array(MockReplySchema)).describe(
    "Replies in order, per `<agent>.<action>`, `<action>` or `default`; past the end the last one repeats",
  ).optional(),
}).describe("Script of `provider: mock`; without a reply for an action the mock generates one").meta({
  id: "mock_script",
  examples: [{
    replies: {
      advise: [{ tool_calls: [{ tool: "weather_tool", input: { city: "Lisbon" } }] }, {
        output: { advice: "Take a light jacket" },
      }],
    },
  }],
});

/** What a model's tokens cost, for `max_cost` budgets and the cost shown with an execution's usage. */
const PriceSchema = z.strictObject({
  input_per_million: z.number().min(0).describe("Price of one million input (prompt) tokens"),
  output_per_million: z.number().min(0).describe("Price of one million output (generated) tokens"),
}).describe("The model's price per million tokens, in one currency of your choice").meta({
  id: "model_price",
  examples: [{ input_per_million: 0.15, output_per_million: 0.6 }],
});

/** Token and cost limits, as an agent's `budget` and a workflow's `config.budget` take them. */
export const budgetFields = {
  max_input_tokens: z.number().int().min(1).describe("Input tokens summed over the model requests")
    .optional(),
  max_output_tokens: z.number().int().min(1).describe("Output tokens summed over the model requests")
    .optional(),
  max_total_tokens: z.number().int().min(1).describe("Total tokens summed over the model requests")
    .optional(),
  max_cost: z.number().positive().describe("Cost from the models' `price`").optional(),
};

/** Limits on what one agent task may spend; exceeding one ends the task with `agent_budget_exceeded`. */
export const BudgetSchema = z.strictObject(budgetFields).describe(
  "Spending limits of one agent task, checked after each model reply; `max_cost` needs the model's price",
).meta({
  id: "agent_budget",
  examples: [{ max_total_tokens: 20000, max_cost: 0.05 }],
});

/**
 * A model's `base_url`: an http(s) URL, or a template (checked once rendered, when the agent runs). A literal
 * such as `localhost:11434` (which parses with the scheme `localhost:`) failed only when an agent task ran
 * (outside review rev35).
 */
export const BASE_URL_PATTERN = "^(https?://[^/]|[\\s\\S]*\\{\\{)";

const modelFields = {
  provider: z.enum(PROVIDERS).describe("LLM provider"),
  model: z.string().min(1).describe("Model name at the provider").meta({ examples: ["gpt-4o-mini"] }),
  api_key: z.string().describe("API key; usually a template such as {{ .env.OPENAI_API_KEY }}").meta({
    examples: ["{{ .env.OPENAI_API_KEY }}"],
  }).optional(),
  base_url: z.string().regex(new RegExp(BASE_URL_PATTERN)).describe(
    "Endpoint of the provider's API (http or https); may be a template",
  ).meta({
    examples: ["http://127.0.0.1:11434/v1"],
  }).optional(),
  temperature: z.number().min(0).max(2).describe("Sampling temperature").optional(),
  max_tokens: z.number().int().min(1).describe("Upper bound on generated tokens").optional(),
  price: PriceSchema.optional(),
  mock: MockScriptSchema.optional(),
};

/** A named model in the project's `models:` list. */
export const ModelSchema = z.strictObject({
  id: idField("Model id, referred to by an agent's `config.$model`"),
  ...modelFields,
}).describe("A named model configuration").meta({ id: "model" });

/**
 * An agent's model: `$model` names a project model (its other fields override it), or `provider` and `model`
 * are given inline. JSON Schema states the either/or (see the `if` below); TypeScript sees optional fields.
 */
export const AgentModelSchema = z.strictObject({
  $model: idField("Id of a model in the project's `models:`").optional(),
  provider: modelFields.provider.optional(),
  model: modelFields.model.optional(),
  api_key: modelFields.api_key,
  base_url: modelFields.base_url,
  temperature: modelFields.temperature,
  max_tokens: modelFields.max_tokens,
  price: modelFields.price,
  mock: modelFields.mock,
}).describe("The agent's model: `$model`, or `provider` and `model` inline").meta({
  id: "agent_model",
  examples: [{ $model: "default", temperature: 0.2 }, { provider: "openai", model: "gpt-4o-mini" }],
  if: { not: { required: ["$model"] } },
  then: { required: ["provider", "model"] },
});

/** One thing an agent can be asked to do from a task (`action:`). */
export const ActionSchema = z.strictObject({
  id: idField("Action id, unique in its agent"),
  prompt: z.string().min(1).describe(
    "Prompt template; `.input` is the task's rendered `with`, and `.workflow`, `.tasks`, `.env` are available",
  ).meta({ examples: ["Advise about clothes in {{ .input.city }}"] }),
  output: jsonSchemaField("the structured output; without it the output is `{ text }`").optional(),
}).describe("An agent action").meta({ id: "action" });

/** What an agent remembers between tasks: the conversation under a key, in a JetStream KV bucket. */
export const AgentMemorySchema = z.strictObject({
  key: z.string().min(1).describe(
    "Template of the conversation's key; tasks whose keys render the same share it (per user, per conversation, per execution)",
  ).meta({ examples: ["user:{{ .workflow.input.user }}", "exec:{{ .workflow.exec_id }}"] }),
  window: z.number().int().min(1).max(1000).describe(
    "How many of the latest messages are kept and sent to the model before the prompt (default 20; a prompt and its answer are two)",
  ).optional(),
  window_tokens: z.number().int().min(1).describe(
    "And at most about this many tokens of them (counted as one token per 4 characters); default: no token bound",
  ).optional(),
  summarize: z.union([
    z.boolean(),
    z.strictObject({
      $model: idField("Id of the project model that writes the summary; default the agent's own").optional(),
      max_tokens: z.number().int().min(1).describe("Upper bound on the summary's tokens (default 400)")
        .optional(),
    }),
  ]).describe(
    "Summarize what falls out of the window (with the earlier summary) instead of forgetting it; the summary is sent before the window",
  ).optional(),
}).describe("The agent's memory: earlier prompts and answers under a key").meta({ id: "agent_memory" });

/** An agent as declared in `agents:` or in its own file for `use: agent(file=...)`. */
export const AgentSchema = z.strictObject({
  id: idField("Agent id, unique in the file that declares it"),
  config: AgentModelSchema,
  instructions: z.string().min(1).describe("System instructions of the agent"),
  tools: z.array(
    z.string().regex(new RegExp(AGENT_TOOL_PATTERN)).describe(
      "Id of a tool (resolved in the running workflow first, then the project), or mcp(id=X) for every tool " +
        "of the project's MCP server X, or mcp(id=X, tool=Y) for one of them",
    ).meta({ examples: ["weather_tool", "mcp(id=docs)", "mcp(id=docs, tool=search)"] }),
  ).describe("Tools the model may call").optional(),
  max_steps: z.number().int().min(1).describe("Bound on the tool-calling loop (default 10)").optional(),
  memory: AgentMemorySchema.optional(),
  budget: BudgetSchema.optional(),
  actions: z.array(ActionSchema).describe("What tasks can ask this agent to do").optional(),
  env: envField().optional(),
}).describe("An LLM agent").meta({ id: "agent" });

export type Provider = (typeof PROVIDERS)[number];
export type ModelConfig = z.infer<typeof ModelSchema>;
export type AgentModelConfig = z.infer<typeof AgentModelSchema>;
export type ActionConfig = z.infer<typeof ActionSchema>;
export type AgentConfig = z.infer<typeof AgentSchema>;
export type BudgetConfig = z.infer<typeof BudgetSchema>;
