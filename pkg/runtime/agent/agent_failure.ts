/**
 * The closed failure vocabulary of an agent call. Every way `runAgent` can fail ends as one
 * {@link AgentFailure}; its `code`, `retryable` and `retryAfterMs` map one to one onto the `ErrorInfo` of
 * `AgentExecutionFailed` (proto/common.proto), so the engine's retry policy can act on it without parsing text.
 *
 * @module
 */

import { redactJson, redactorFor, urlSecretValues } from "../secret_redaction.ts";

/**
 * | code | retryable | when |
 * |---|---|---|
 * | `agent_provider_auth` | no | the provider answered 401 or 403 |
 * | `agent_rate_limited` | yes | 429; `retryAfterMs` from `retry-after-ms` / `retry-after` |
 * | `agent_provider_error` | 5xx, network: yes; other 4xx: no | any other provider or transport failure, a reply that is not a stream of the provider's events, or one that ended before the model finished it |
 * | `agent_empty_reply` | yes | the model finished a reply with no text and no tool call |
 * | `agent_timeout` | yes | a model request outlived `timeout_ms`, or `signal` aborted with a `TimeoutError` (the task's time limit) |
 * | `agent_canceled` | no | `signal` aborted for another reason: the task or its execution was canceled |
 * | `agent_output_invalid` | no | the reply failed the output schema twice (once after the repair request) |
 * | `agent_unknown_tool` | no | the model called a tool the agent does not have |
 * | `agent_max_steps` | no | the model still wanted tools on its last allowed step |
 * | `agent_config_invalid` | no | the call itself is wrong: model spec, schema, tools, max steps, missing API key |
 * | `agent_budget_exceeded` | no | the usage so far passed a limit of the agent's `budget` (checked after each reply) |
 * | `agent_reply_too_large` | no | a model reply, as recorded, is larger than one history event carries (`maxReplyBytes`) |
 * | `agent_turn_unrecorded` | yes | a turn could not be stored in the history; the loop stops rather than go on unrecorded |
 * | `agent_mcp_unavailable` | yes | an MCP server of the agent could not be reached, started or listed in time |
 * | `agent_memory_unavailable` | yes | the agent's memory could not be read or written (NATS down, or a write kept conflicting) |
 * | `agent_memory_invalid` | no | the stored conversation is not one, or the new one cannot fit in a memory document |
 * | `agent_mcp_invalid` | no | an MCP server's tool list is malformed, lacks a selected tool, or repeats a name |
 */
export type AgentFailureCode =
  | "agent_provider_auth"
  | "agent_rate_limited"
  | "agent_provider_error"
  | "agent_empty_reply"
  | "agent_timeout"
  | "agent_canceled"
  | "agent_output_invalid"
  | "agent_unknown_tool"
  | "agent_max_steps"
  | "agent_config_invalid"
  | "agent_budget_exceeded"
  | "agent_reply_too_large"
  | "agent_turn_unrecorded"
  | "agent_mcp_unavailable"
  | "agent_mcp_invalid"
  | "agent_memory_unavailable"
  | "agent_memory_invalid";

export interface AgentFailureOptions {
  retryable: boolean;
  retryAfterMs?: number;
  /** Machine-readable context (status, failing fields, tool names…); always a JSON object. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** Why an agent call failed, and whether the engine may try it again. */
export class AgentFailure extends Error {
  override name = "AgentFailure";
  readonly code: AgentFailureCode;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly details?: Record<string, unknown>;

  constructor(code: AgentFailureCode, message: string, options: AgentFailureOptions) {
    super(message, { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    if (options.details !== undefined) this.details = options.details;
  }
}

/** A config failure: the call can never succeed as written, so it is never retried. */
/**
 * Thrown by `callTool` when the runtime gave the call up without an outcome (it is stopping, and killed the call's
 * sandbox): the call has no result, so none is recorded, and the loop ends at once rather than telling the model
 * the tool failed; the task is sent again and its re-run makes the call (outside review A2).
 */
export class ToolCallGivenUp extends Error {
  override name = "ToolCallGivenUp";
}

export function configInvalid(
  message: string,
  details?: Record<string, unknown>,
  cause?: unknown,
): AgentFailure {
  return new AgentFailure("agent_config_invalid", message, { retryable: false, details, cause });
}

/** The message of any thrown value, for building failure messages. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The failure with the model's `api_key` (and what its `base_url` may hold: see `urlSecretValues`) masked in
 * its message and details; its cause, which
 * says the same, is then not kept. A provider's error body is quoted in both, and some echo the key they
 * refused (a proxy's "invalid key sk-…"), as does a `base_url` holding one in its URL: before (outside break
 * attempt brk38), the key went into the task's failure, its history and the API's answers as it was.
 */
export function redactAgentFailure(
  failure: AgentFailure,
  model: { api_key?: string; base_url?: string },
): AgentFailure {
  const secrets = [model.api_key, ...urlSecretValues(model.base_url)];
  const redact = redactorFor(Object.fromEntries(secrets.flatMap((secret, i) => secret ? [[i, secret]] : [])));
  if (!redact) return failure;
  const message = redact(failure.message);
  const details = failure.details === undefined ? undefined : redactJson(failure.details, redact);
  if (message === failure.message && JSON.stringify(details) === JSON.stringify(failure.details)) {
    return failure;
  }
  return withMessage(failure, message, details as Record<string, unknown> | undefined);
}

/**
 * `failure` with another message and details (a masked copy), and without its cause, which says the first
 * message.
 */
export function withMessage(
  failure: AgentFailure,
  message: string,
  details: Record<string, unknown> | undefined = failure.details,
): AgentFailure {
  return new AgentFailure(failure.code, message, {
    retryable: failure.retryable,
    retryAfterMs: failure.retryAfterMs,
    details,
  });
}
