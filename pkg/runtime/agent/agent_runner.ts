/**
 * The agent loop. Each model request is one single-step `generateText` call; the loop around it (tool
 * calls, the step bound, the repair request) is ours, because the SDK's built-in loop would run the tools a
 * model asks for on its last allowed step (whose results nobody reads) and would tell the model about an
 * unknown tool instead of stopping.
 *
 * Semantics, exactly:
 * - A step is one model request. After a step with tool calls, the tools run (concurrently, through
 *   `callTool`) and their results or error messages go back to the model in the next step.
 * - A call for a tool the agent does not have ends the call with `agent_unknown_tool` before any tool of
 *   that step runs: a model naming tools it was not given is not going to recover, and the agent must never
 *   reach a tool it was not granted. Malformed arguments for a known tool are reported back to the model.
 * - If the model still asks for tools at step `maxSteps`, the call fails with `agent_max_steps` and those
 *   tools do not run.
 * - A final reply that fails the output schema gets ONE repair request (the problems are sent back, tools
 *   are off); if that reply fails too, `agent_output_invalid`. The repair request does not count against
 *   `maxSteps` but is counted in `steps` and `usage`.
 * - A reply the provider did not finish, or one with no text and no tool call, is not recorded: the call
 *   fails (`agent_provider_error`, `agent_empty_reply`, both retryable) and a retry asks again.
 * - After each reply (recorded or replayed) the usage so far is checked against `budget` (budget.ts): over a
 *   limit, the call ends with `agent_budget_exceeded` before any tool of that reply runs.
 * - Each model request is a turn, numbered from 1; each reply is recorded in the call's journal before the
 *   tools it asked for run, and each tool result before the next request (turn_journal.ts). A turn the
 *   journal already holds is replayed: the model is not asked, the tool does not run, its usage counts again
 *   in `usage`. With a fence in the journal, a turn another runner of the same task is making is waited for
 *   and replayed. Call `index` of turn `turn` runs with the key `<task exec id>:<turn>:<index>`.
 *
 * @module
 */

import {
  jsonSchema,
  type JSONValue,
  type LanguageModel,
  type ModelMessage,
  streamText,
  tool,
  type ToolResultPart,
  type ToolSet,
} from "ai";
import {
  type AgentCall,
  type AgentResult,
  DEFAULT_MAX_STEPS,
  DEFAULT_MODEL_TIMEOUT_MS,
} from "./agent_call.ts";
import {
  AgentFailure,
  configInvalid,
  errorMessage,
  redactAgentFailure,
  ToolCallGivenUp,
} from "./agent_failure.ts";
import { failureFromModelError } from "./provider_errors.ts";
import { type ProviderOptions, resolveModel } from "./provider_factory.ts";
import {
  compileOutputSchema,
  describeProblems,
  type OutputProblem,
  type StructuredOutput,
} from "./structured_output.ts";
import { checkBudget, checkBudgetConfig } from "./budget.ts";
import { tokenUsage, UsageMeter } from "./token_usage.ts";
import {
  type ReplyRecord,
  toolCallKey,
  type ToolCallRecord,
  type ToolResultRecord,
  TurnJournal,
} from "./turn_journal.ts";

/** Everything one call needs, checked and built up front. */
interface Session {
  call: AgentCall;
  label: string;
  model: LanguageModel;
  providerOptions: ProviderOptions;
  tools: ToolSet | undefined;
  toolIds: Set<string>;
  structured: StructuredOutput | undefined;
  maxSteps: number;
  timeoutMs: number;
  usage: UsageMeter;
  journal: TurnJournal;
  /** Bytes of tool output the conversation holds so far (see {@linkcode MAX_TOOL_OUTPUT_BYTES_PER_CALL}). */
  toolOutputBytes: number;
}

/** What the loop keeps of one streamed model request, once it has ended. */
interface ModelReply {
  response: { messages: ModelMessage[] };
  text: string;
  toolCalls: { toolCallId: string; toolName: string; input: unknown; invalid?: boolean }[];
  usage: Parameters<typeof tokenUsage>[0];
}

/** The model's reply is kept in `agent_output_invalid` details up to this many characters. */
const MAX_REPLY_EXCERPT = 2_000;

const encoder = new TextEncoder();

/**
 * How many tool calls of one model reply run at once; the rest wait their turn, in the reply's order. A reply
 * may ask for thousands of calls (its size is bounded only by what one history event carries: ~20,000 calls of
 * a small tool in 4 MiB), and before (outside break attempt brk38) they all went to the sandbox pool at once:
 * a pool serves the calls of one tool oldest first, so another execution's call of the same tool waited
 * behind every one of them (and failed `tool_timeout` waiting for a sandbox when that took longer than its
 * limit). Providers' parallel calls are a handful; more than this only wait a little longer.
 */
export const MAX_TOOL_CALLS_IN_FLIGHT = 8;

/**
 * Bytes of tool output one agent call's conversation may hold, every step's together. Each output is bounded
 * (4 MiB), but a reply may ask for thousands of calls: before (outside break attempt brk38), 150 outputs of 4
 * MiB took the runtime to ~950 MiB of resident memory and the next model request failed "Invalid string
 * length" (retryable, so again at each retry, after 600 MB more of history); a few hundred more would have
 * ended the runtime's process, and every execution on it. An output past this bound goes to the model (and
 * the history) as the call's error, `tool_output_too_large`; no model takes in this much anyway.
 */
export const MAX_TOOL_OUTPUT_BYTES_PER_CALL = 16 * 1024 * 1024;

/**
 * Runs one agent action: the tool-calling loop, then structured output with one repair. Never throws; every
 * failure is an {@link AgentFailure} in the result, with the usage spent so far.
 *
 * @example
 * ```ts
 * import { runAgent } from "./mod.ts";
 * const result = await runAgent({
 *   agentId: "forecaster",
 *   actionId: "advise",
 *   model: { provider: "openai", model: "gpt-4o-mini", api_key: "sk-…" },
 *   instructions: "You are a concise weather assistant.",
 *   prompt: "Advise about clothes in Lisbon",
 *   outputSchema: { type: "object", properties: { advice: { type: "string" } }, required: ["advice"] },
 *   tools: [{ id: "weather_tool", description: "Current weather for a city" }],
 *   maxSteps: 8,
 *   callTool: (id, input) => Promise.resolve({ tempC: 18 }),
 * });
 * if (!result.ok) console.log(result.failure.code, result.failure.retryable);
 * ```
 */
export async function runAgent(call: AgentCall): Promise<AgentResult> {
  const usage = new UsageMeter(call.model.price);
  const label = `agent '${call.agentId}'${call.actionId ? ` action '${call.actionId}'` : ""}`;
  try {
    return await runLoop(await openSession(call, label, usage));
  } catch (error) {
    // Model errors are mapped where they happen; this catches the rest (config checks, and bugs) alike.
    return {
      ok: false,
      failure: redactAgentFailure(
        failureFromModelError(error, failedRequest(label, call, false)),
        call.model,
      ),
      usage: usage.total,
    };
  }
}

async function openSession(call: AgentCall, label: string, usage: UsageMeter): Promise<Session> {
  const maxSteps = call.maxSteps ?? DEFAULT_MAX_STEPS;
  if (!Number.isInteger(maxSteps) || maxSteps < 1) {
    throw configInvalid(`${label}: 'max_steps' must be a positive integer: current value is ${maxSteps}`, {
      field: "max_steps",
    });
  }
  checkBudgetConfig(call.budget, call.model.price, label);
  checkBudgetConfig(call.workflowBudget, call.model.price, label);
  const { model, providerOptions } = await labeled(label, () =>
    resolveModel(call.model, {
      agentId: call.agentId,
      actionId: call.actionId,
    }));
  return {
    call,
    label,
    model,
    providerOptions,
    ...toolSet(call, label),
    structured: call.outputSchema ? compileOutputSchema(call.outputSchema, label) : undefined,
    maxSteps,
    timeoutMs: call.model.timeout_ms ?? DEFAULT_MODEL_TIMEOUT_MS,
    usage,
    journal: call.journal ?? new TurnJournal(),
    toolOutputBytes: 0,
  };
}

/**
 * `make()`, its AgentFailure prefixed with the agent and action: a model that cannot be made said only "Cannot
 * create a openai-compatible model as 'base_url' is not an http(s) URL…" (outside review rev35).
 */
async function labeled<T>(label: string, make: () => Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (error) {
    if (!(error instanceof AgentFailure)) throw error;
    throw new AgentFailure(error.code, `${label}: ${error.message}`, {
      retryable: error.retryable,
      retryAfterMs: error.retryAfterMs,
      details: error.details,
      cause: error,
    });
  }
}

function toolSet(call: AgentCall, label: string): Pick<Session, "tools" | "toolIds"> {
  const toolIds = new Set<string>();
  for (const spec of call.tools) {
    if (!spec.id || toolIds.has(spec.id)) {
      throw configInvalid(`${label}: tool ids must be non-empty and unique: ${JSON.stringify(spec.id)}`, {
        field: "tools",
      });
    }
    toolIds.add(spec.id);
  }
  if (toolIds.size === 0) return { tools: undefined, toolIds };
  // No `execute`: the SDK returns the calls to us and the loop below runs them.
  const tools = Object.fromEntries(call.tools.map((spec) => [
    spec.id,
    tool({
      description: spec.description,
      inputSchema: jsonSchema(spec.inputSchema ?? { type: "object", properties: {} }),
    }),
  ]));
  return { tools, toolIds };
}

async function runLoop(session: Session): Promise<AgentResult> {
  const messages: ModelMessage[] = [
    ...session.call.history ?? [],
    { role: "user", content: session.call.prompt },
  ];
  for (let step = 1;; step++) {
    const reply = await modelTurn(session, messages, step);
    messages.push(...reply.messages);
    if (reply.toolCalls.length === 0) return await finish(session, messages, reply, step);
    rejectUnknownTools(session, reply.toolCalls);
    if (step >= session.maxSteps) throw maxStepsReached(session, reply.toolCalls);
    // The SDK already answered calls whose arguments did not parse (a tool-error in its response messages).
    const runnable = reply.toolCalls.filter((toolCall) => !toolCall.invalid);
    appendToolResults(
      messages,
      await mapBounded(runnable, MAX_TOOL_CALLS_IN_FLIGHT, (toolCall) => {
        // A call not started when the agent call's time ran out (or it was canceled) is not started: the loop
        // ends with that reason (runAgent), and before, every call of a long reply still ran after it.
        session.call.signal?.throwIfAborted();
        return toolTurn(session, step, toolCall);
      }),
    );
  }
}

/**
 * Turn `turn`: the recorded reply, or a model request whose reply is recorded before it is returned (or, with
 * a fence, the reply another runner of the task is getting).
 */
async function modelTurn(
  session: Session,
  messages: ModelMessage[],
  turn: number,
  options: { repair?: boolean } = {},
): Promise<ReplyRecord> {
  const reply = await session.journal.reply(
    turn,
    async () =>
      recordable(
        session,
        replyRecord(
          session,
          turn,
          options.repair ?? false,
          await requestModel(session, messages, turn, options),
        ),
      ),
  );
  session.usage.add(reply.usage);
  checkBudgets(session);
  return reply;
}

function checkBudgets(session: Session): void {
  const { call, usage, label } = session;
  checkBudget(call.budget, usage.total, label, "agent");
  checkBudget(call.workflowBudget, usage.total, label, "workflow");
}

function replyRecord(session: Session, turn: number, repair: boolean, reply: ModelReply): ReplyRecord {
  return {
    turn,
    repair,
    messages: reply.response.messages,
    text: reply.text,
    toolCalls: reply.toolCalls.map((toolCall, index) => ({
      index,
      callId: toolCall.toolCallId,
      toolId: toolCall.toolName,
      input: toolCall.input,
      invalid: Boolean(toolCall.invalid),
      key: toolCallKey(session.call.taskExecId ?? "", turn, index),
      ...mcpServerOf(session, toolCall.toolName),
    })),
    usage: tokenUsage(reply.usage),
  };
}

/**
 * `record`, when the history can hold it: a reply larger than `maxReplyBytes` (what one NATS message carries)
 * could not be stored as its turn, and failed as an unexplained `agent_turn_unrecorded` from the bus with no
 * usage (outside review rev35). Its tokens were spent all the same, so they are counted before it fails.
 */
function recordable(session: Session, record: ReplyRecord): ReplyRecord {
  const limit = session.call.maxReplyBytes;
  if (limit === undefined) return record;
  const bytes = encoder.encode(JSON.stringify(record)).length;
  if (bytes <= limit) return record;
  session.usage.add(record.usage);
  throw new AgentFailure(
    "agent_reply_too_large",
    `${session.label}: turn ${record.turn}: the model's reply is ${bytes} bytes as recorded, over the ${limit} ` +
      `bytes one history event carries; lower the model's max_tokens`,
    { retryable: false, details: { turn: record.turn, bytes, limit } },
  );
}

function mcpServerOf(session: Session, toolId: string): { mcpServer?: string } {
  const server = session.call.tools.find((spec) => spec.id === toolId)?.mcpServer;
  return server ? { mcpServer: server } : {};
}

async function finish(session: Session, messages: ModelMessage[], reply: ReplyRecord, steps: number) {
  const { structured } = session;
  if (!structured) return succeeded(session, { text: reply.text }, steps);
  const first = structured.check(reply.text);
  if (first.ok) return succeeded(session, first.value, steps);
  messages.push({ role: "user", content: repairRequest(first.problems) });
  const repaired = await modelTurn(session, messages, steps + 1, { repair: true });
  const second = structured.check(repaired.text);
  if (second.ok) return succeeded(session, second.value, steps + 1);
  throw new AgentFailure(
    "agent_output_invalid",
    `${session.label}: the output does not match the action's schema after one repair attempt: ${
      describeProblems(second.problems)
    }`,
    {
      retryable: false,
      details: {
        problems: second.problems,
        firstProblems: first.problems,
        reply: repaired.text.slice(0, MAX_REPLY_EXCERPT),
      },
    },
  );
}

function succeeded(session: Session, output: unknown, steps: number): AgentResult {
  return { ok: true, output, usage: session.usage.total, steps };
}

/**
 * One model request, bounded by `timeout_ms` and the caller's signal; errors leave as AgentFailures. The
 * reply is streamed so that its text reaches `onDelta` as it comes (live views); the loop uses it only
 * once the stream has ended, exactly as a whole reply.
 */
async function requestModel(
  session: Session,
  messages: ModelMessage[],
  turn: number,
  options: { repair?: boolean } = {},
): Promise<ModelReply> {
  const { call, timeoutMs } = session;
  const timer = new AbortController();
  const timeout = setTimeout(
    () => timer.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")),
    timeoutMs,
  );
  try {
    call.signal?.throwIfAborted();
    const reply = streamText({
      model: session.model,
      instructions: call.instructions || undefined,
      messages,
      tools: session.tools,
      // A repair must be an answer; with tools still declared (history holds tool calls) but none allowed.
      toolChoice: options.repair && session.tools ? "none" : undefined,
      output: session.structured?.responseFormat,
      temperature: call.model.temperature,
      maxOutputTokens: call.model.max_tokens,
      providerOptions: session.providerOptions,
      maxRetries: 0,
      abortSignal: call.signal ? AbortSignal.any([call.signal, timer.signal]) : timer.signal,
      // Errors arrive as parts of the stream below, where they are thrown.
      onError: () => {},
    });
    for await (const part of reply.fullStream) {
      if (part.type === "error") throw part.error;
      if (part.type === "text-delta" && part.text) call.onDelta?.({ turn, text: part.text });
    }
    const [response, text, toolCalls, usage, finishReason, rawFinishReason] = await Promise.all([
      reply.response,
      reply.text,
      reply.toolCalls,
      reply.usage,
      reply.finishReason,
      reply.rawFinishReason,
    ]);
    checkFinished(session, turn, { text, toolCalls, usage, finishReason, rawFinishReason });
    return { response, text, toolCalls, usage };
  } catch (error) {
    throw failureFromModelError(error, failedRequest(session.label, call, timer.signal.aborted, timeoutMs));
  } finally {
    clearTimeout(timeout);
  }
}

/**
 * A reply is an answer only when the model finished it and it holds something. Both checks come before the
 * turn is recorded, so the failure is retryable: a retry asks the model again rather than replay this reply.
 * - Unfinished: the stream ended without the provider's finish (a connection closed cleanly midway, a proxy's
 *   HTML page served as 200, which the SDK reads as a stream of no events): `interrupted` or `error`, or
 *   `other` with no reason from the provider (the Anthropic and OpenAI-compatible clients' value until one
 *   arrives). Its text so far is not an answer.
 * - Empty: finished with no text and no tool call; its usage is kept in the failure's.
 */
function checkFinished(
  session: Session,
  turn: number,
  reply: Pick<ModelReply, "text" | "toolCalls" | "usage"> & {
    finishReason: string;
    rawFinishReason: string | undefined;
  },
): void {
  const { finishReason, rawFinishReason } = reply;
  const where = `${session.label}: turn ${turn}`;
  if (
    finishReason === "interrupted" || finishReason === "error" ||
    (finishReason === "other" && rawFinishReason === undefined)
  ) {
    throw new AgentFailure(
      "agent_provider_error",
      `${where}: the reply ended before the model finished it (finish reason: ${finishReason}); the text it ` +
        `had sent (${reply.text.length} characters) is not an answer`,
      { retryable: true, details: { finishReason, turn } },
    );
  }
  if (reply.text.trim() === "" && reply.toolCalls.length === 0) {
    session.usage.add(tokenUsage(reply.usage));
    throw new AgentFailure(
      "agent_empty_reply",
      `${where}: the model's reply has no text and no tool call (finish reason: ${
        rawFinishReason ?? finishReason
      })`,
      { retryable: true, details: { finishReason: rawFinishReason ?? finishReason, turn } },
    );
  }
}

function failedRequest(label: string, call: AgentCall, timedOut: boolean, timeoutMs = 0) {
  return { label, timedOut, timeoutMs, callerSignal: call.signal };
}

function rejectUnknownTools(session: Session, toolCalls: ToolCallRecord[]): void {
  const unknown = toolCalls.find((toolCall) => !session.toolIds.has(toolCall.toolId));
  if (!unknown) return;
  const available = [...session.toolIds];
  throw new AgentFailure(
    "agent_unknown_tool",
    `${session.label}: the model called tool '${unknown.toolId}', which the agent does not have ` +
      `(its tools: ${available.length ? available.join(", ") : "none"})`,
    { retryable: false, details: { tool: unknown.toolId, available } },
  );
}

function maxStepsReached(session: Session, toolCalls: ToolCallRecord[]): AgentFailure {
  const pending = toolCalls.map((toolCall) => toolCall.toolId);
  const wanted = pending.join(", ");
  return new AgentFailure(
    "agent_max_steps",
    `${session.label}: the model still wanted to call ${wanted} after ${session.maxSteps} steps (max_steps); ` +
      "those calls did not run",
    { retryable: false, details: { maxSteps: session.maxSteps, pendingTools: pending } },
  );
}

/**
 * `work` on each item, at most `limit` at once, started in order; the results in the items' order. The first
 * rejection rejects the whole, like `Promise.all`, and no further item starts.
 */
async function mapBounded<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < items.length) {
      const at = next++;
      try {
        results[at] = await work(items[at]);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/** One tool call of turn `turn`: its recorded result, or a run whose result is recorded before it is used. */
async function toolTurn(session: Session, turn: number, toolCall: ToolCallRecord): Promise<ToolResultPart> {
  let ran = false;
  const result = await session.journal.toolResult(turn, toolCall, () => {
    ran = true;
    return runTool(session, turn, toolCall);
  });
  // A replayed output counts as it did when it ran (runTool counts a fresh one).
  if (!ran && result.output !== undefined) session.toolOutputBytes += outputBytes(result.output);
  return toolResultPart(toolCall, result);
}

/** An output's size as the conversation holds it (a string's length; else its JSON's). */
function outputBytes(output: unknown): number {
  return typeof output === "string" ? output.length : JSON.stringify(output ?? null).length;
}

/** Runs one tool call; a failure becomes the error result the model sees, not a failure of the call. */
async function runTool(session: Session, turn: number, toolCall: ToolCallRecord): Promise<ToolResultRecord> {
  const started = performance.now();
  const ref = { key: toolCall.key, turn, index: toolCall.index };
  let ended: Omit<ToolResultRecord, "durationMs">;
  try {
    const value = await session.call.callTool(toolCall.toolId, toolCall.input, ref);
    const bytes = outputBytes(value);
    if (session.toolOutputBytes + bytes > MAX_TOOL_OUTPUT_BYTES_PER_CALL) {
      ended = {
        turn,
        index: toolCall.index,
        error:
          `${toolCall.toolId}'s output of ${bytes} bytes is not passed on: this agent call's tool outputs ` +
          `would be over ${MAX_TOOL_OUTPUT_BYTES_PER_CALL} bytes`,
        errorCode: "tool_output_too_large",
      };
    } else {
      session.toolOutputBytes += bytes;
      ended = { turn, index: toolCall.index, output: value ?? null };
    }
  } catch (error) {
    if (error instanceof ToolCallGivenUp) throw error;
    const code = (error as { code?: unknown })?.code;
    ended = {
      turn,
      index: toolCall.index,
      error: errorMessage(error),
      ...(typeof code === "string" ? { errorCode: code } : {}),
    };
  }
  return { ...ended, durationMs: performance.now() - started };
}

function toolResultPart(toolCall: ToolCallRecord, result: ToolResultRecord): ToolResultPart {
  const { callId: toolCallId, toolId: toolName } = toolCall;
  if (result.error !== undefined) {
    return { type: "tool-result", toolCallId, toolName, output: { type: "error-text", value: result.error } };
  }
  const value = result.output;
  const output = typeof value === "string"
    ? { type: "text" as const, value }
    : { type: "json" as const, value: (value ?? null) as JSONValue };
  return { type: "tool-result", toolCallId, toolName, output };
}

/** Tool results join the SDK's own tool message when it wrote one (errors for malformed calls). */
function appendToolResults(messages: ModelMessage[], results: ToolResultPart[]): void {
  if (results.length === 0) return;
  const last = messages.at(-1);
  if (last?.role === "tool") last.content.push(...results);
  else messages.push({ role: "tool", content: results });
}

function repairRequest(problems: OutputProblem[]): string {
  return [
    "Your reply does not match the required JSON Schema:",
    ...problems.map((problem) => `- ${problem.path}: ${problem.message}`),
    "Reply again with only the corrected JSON, nothing else.",
  ].join("\n");
}
