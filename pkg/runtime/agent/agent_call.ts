/**
 * The contract of one agent action run: what the runtime hands to `runAgent` and what it gets back.
 * The implementation is in `agent_runner.ts`.
 *
 * @module
 */

import type { AgentFailure } from "./agent_failure.ts";
import type { TurnJournal } from "./turn_journal.ts";

export type ProviderName =
  | "openai"
  | "anthropic"
  | "google"
  | "groq"
  | "ollama"
  | "openai-compatible"
  | "mock";

/** One scripted reply of the `mock` provider: exactly one of `text`, `output` or `tool_calls`. */
export interface MockReply {
  text?: string;
  /** Sent as JSON text; an action's output schema checks it like any model's reply. */
  output?: unknown;
  /** Tools the model asks for; they run in the sandbox like any model's tool calls. */
  tool_calls?: { tool: string; input?: unknown }[];
  /** Tokens reported for this reply; default one per 4 characters of prompt and of reply. */
  usage?: { input_tokens?: number; output_tokens?: number };
}

/** The `mock` field of a model: replies per action (`<agent>.<action>`, `<action>` or `default`). */
export interface MockScript {
  replies?: Record<string, MockReply[]>;
}

/** A resolved model config (CONFIG.md `models` or an agent's inline config), templates already rendered. */
export interface ModelSpec {
  provider: ProviderName;
  model: string;
  /** Without it the provider package reads its usual variable (e.g. `OPENAI_API_KEY`); not needed by ollama. */
  api_key?: string;
  /** Required for `openai-compatible`. For `ollama` it is the native API root (`http://host:11434/api`). */
  base_url?: string;
  temperature?: number;
  max_tokens?: number;
  /** Bound on ONE model request (not the whole call, not tool runs); default {@link DEFAULT_MODEL_TIMEOUT_MS}. */
  timeout_ms?: number;
  /** The script of the `mock` provider (mock_model.ts); only with `provider: mock`. */
  mock?: MockScript;
  /** What a million tokens cost; with it the usage carries a `cost` and `max_cost` can be checked. */
  price?: ModelPrice;
}

export interface ModelPrice {
  input_per_million: number;
  output_per_million: number;
}

/** An agent's `budget:` (CONFIG: docs/yaml-reference.md), over every model request of one task. */
export interface AgentBudget {
  max_input_tokens?: number;
  max_output_tokens?: number;
  max_total_tokens?: number;
  max_cost?: number;
}

/** One model request may take this long when the spec does not say. */
export const DEFAULT_MODEL_TIMEOUT_MS = 120_000;

/** CONFIG.md: an agent's `max_steps` defaults to 10. */
export const DEFAULT_MAX_STEPS = 10;

/** A tool the model may call; `id` is the name the model sees. */
export interface AgentToolSpec {
  id: string;
  description?: string;
  /** JSON Schema of the tool's input; default: any object. */
  inputSchema?: Record<string, unknown>;
  /** The MCP server that serves the tool (recorded with each call); absent for the agent's own tools. */
  mcpServer?: string;
}

/** Which call of the loop a tool run is: `key` is `<task exec id>:<turn>:<index>`. */
export interface ToolCallRef {
  key: string;
  turn: number;
  index: number;
}

export interface AgentCall {
  agentId: string;
  actionId?: string;
  model: ModelSpec;
  instructions: string;
  /** The action's prompt, already rendered. */
  prompt: string;
  /** Earlier messages of the conversation (the agent's memory), sent before the prompt. */
  history?: ConversationMessage[];
  /** JSON Schema of the action's output; without it the output is `{ text }`. */
  outputSchema?: Record<string, unknown>;
  tools: AgentToolSpec[];
  /** Bound on model requests in the tool-calling loop (the one repair request is extra); default {@link DEFAULT_MAX_STEPS}. */
  maxSteps?: number;
  /**
   * Runs a tool in the sandbox. A rejection is not a call failure: its message goes back to the model as
   * that tool call's error result, and the loop goes on. `call.key` is the call's idempotency key.
   */
  callTool: (toolId: string, input: unknown, call: ToolCallRef) => Promise<unknown>;
  /** The task execution the loop runs for: the first part of each tool call's idempotency key. */
  taskExecId?: string;
  /**
   * Turns recorded by earlier runs of the same task (replayed, not asked again) and where new turns are
   * recorded; default: nothing recorded, nothing kept.
   */
  journal?: TurnJournal;
  /**
   * Bound on one model reply as its turn is recorded (JSON of its messages, text and tool calls): the runtime
   * gives what one NATS message carries. A larger reply ends the call with `agent_reply_too_large`, its usage
   * counted. Default: no bound (nothing is recorded without a journal).
   */
  maxReplyBytes?: number;
  /** Checked after each model reply; exceeding a limit ends the call with `agent_budget_exceeded`. */
  budget?: AgentBudget;
  /**
   * What the workflow's budget left for this task when it was dispatched (the engine subtracts what the
   * execution's other tasks spent); checked like `budget`. Its `max_cost` only comes with a model price.
   */
  workflowBudget?: AgentBudget;
  /**
   * Receives the text of each model reply as it streams, piece by piece (live views only: nothing may
   * depend on it; a replayed turn sends none). Must not throw.
   */
  onDelta?: (delta: { turn: number; text: string }) => void;
  /** Aborting ends the call with `agent_timeout` (retryable only when the reason is a `TimeoutError`). */
  signal?: AbortSignal;
}

/** A message of an agent's remembered conversation: a prompt or an answer. */
export interface ConversationMessage {
  role: "user" | "assistant";
  content: string;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  /** From the model's `price`; absent when the model has none. */
  cost?: number;
}

/**
 * `usage` sums every model request made, the repair request and failed calls' earlier steps included;
 * `steps` counts model requests.
 */
export type AgentResult =
  | { ok: true; output: unknown; usage: TokenUsage; steps: number }
  | { ok: false; failure: AgentFailure; usage: TokenUsage };
