/**
 * Agents' memory: the conversation under a key (the agent's rendered `memory.key`), kept in the JetStream KV
 * bucket `compozy_agent_memory` (its TTL forgets a conversation nobody wrote for `nats.agent_memory.max_age`).
 *
 * Semantics, exactly:
 * - What is remembered is each successful agent task's prompt and final answer (the answer's text, or the
 *   JSON of a structured output); the tool calls inside a task and failed tasks are not.
 * - Read before the first model request: the last `window` messages (and, with `windowTokens`, no more than
 *   that many tokens of them, at one token per 4 characters), oldest first, starting at a prompt, of tasks
 *   other than this one; with a summary, the summary first (as a user message that says what it is).
 * - With `summarizer`, what a write pushes out of the window is summarized (with the earlier summary) by that
 *   model and kept as the document's `summary`; its tokens count in the task's usage and toward its budgets
 *   (agent/task_spend.ts): a summary the budgets left cannot cover is not asked for, and one whose actual
 *   usage crosses a limit fails the task `agent_budget_exceeded` before the write. A summary request that
 *   fails, or is not asked for, is logged and the dropped messages are forgotten, the earlier summary kept:
 *   the task's answer stands, its memory is still written. Written after the task's last turn, with a revision check: two tasks writing
 *   the same key at once both land (the later re-reads and appends; at most {@link MAX_WRITE_ATTEMPTS} tries).
 * - A task that runs again (a crash after the write, a retry) is written once: its messages carry its task
 *   execution id, and a document that has them already is left as is.
 * - A document is at most {@link MAX_MEMORY_DOCUMENT_BYTES}: older messages go first; a task whose own
 *   prompt and answer are larger fails with `agent_memory_invalid`, as does a stored document that is not one.
 *   NATS failures are `agent_memory_unavailable`, retryable (the task's recorded turns are replayed, so a
 *   retry does not ask the model again).
 *
 * Entries are stored under the SHA-256 of the key (any text is a valid key; NATS keys are not), with the
 * key itself inside the document for whoever inspects the bucket.
 *
 * @module
 */

import type { NatsConnection } from "@nats-io/transport-node";
import { type KV, Kvm } from "@nats-io/kv";
import { BUCKETS } from "../nats/mod.ts";
import { AgentFailure, errorMessage } from "./agent/agent_failure.ts";
import type { ConversationMessage, ModelSpec, TokenUsage } from "./agent/agent_call.ts";
import type { summarize as summarizeWithModel } from "./agent/summarize.ts";
import { summaryEstimate } from "./agent/summary_request.ts";
import type { TaskSpend } from "./agent/task_spend.ts";
import { getLogger } from "../logger/mod.ts";

const log = getLogger(["runtime", "agent", "memory"]);

/** Large enough for long conversations, small enough to stay far below a NATS message's limit. */
export const MAX_MEMORY_DOCUMENT_BYTES = 1024 * 1024;

/** A write that keeps meeting a newer revision gives up after this many tries. */
export const MAX_WRITE_ATTEMPTS = 5;

/** An agent's `memory:` as the engine sends it: the rendered key and the window. */
export interface MemorySpec {
  key: string;
  window: number;
  /** At most about this many tokens of messages (4 characters a token); absent: no token bound. */
  windowTokens?: number;
  /** Summarize what falls out of the window with this model (`memory.summarize`). */
  summarizer?: { model: ModelSpec; maxTokens: number };
}

/** What the window keeps, by count and by tokens. */
interface WindowLimits {
  window: number;
  windowTokens?: number;
}

interface StoredMessage extends ConversationMessage {
  /** The task execution that said it. */
  task: string;
}

export interface MemoryDocument {
  key: string;
  messages: StoredMessage[];
  /** What fell out of the window, summarized (with `memory.summarize`). */
  summary?: string;
}

/** The summarizer a memory uses: the model request of agent/summarize.ts, or a test's. */
export type Summarize = typeof summarizeWithModel;

/** agent/summarize.ts's request, the module (and the AI SDK it loads) loaded at the first summary. */
const summarizeOnCall: Summarize = async (request) => {
  const { summarize } = await import("./agent/summarize.ts");
  return await summarize(request);
};

/** A token is counted as 4 characters: the bound is approximate, the same for every provider. */
export const CHARS_PER_TOKEN = 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads and writes conversations; opens the bucket at first use. */
export class AgentMemory {
  #kv?: Promise<KV>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly summarize: Summarize = summarizeOnCall,
  ) {}

  /** The remembered messages this task starts with. */
  async read(spec: MemorySpec, taskExecId: string): Promise<ConversationMessage[]> {
    const { doc } = await this.load(spec);
    const messages = windowOf(doc.messages.filter((m) => m.task !== taskExecId), spec)
      .map(({ role, content }): ConversationMessage => ({ role, content }));
    return doc.summary
      ? [{ role: "user", content: `Summary of our earlier conversation: ${doc.summary}` }, ...messages]
      : messages;
  }

  /**
   * Appends this task's prompt and answer; every summary it asks for is charged to `spend`.
   *
   * @throws {AgentFailure} `agent_budget_exceeded` (from `spend`) when a summary crossed a budget: nothing is
   *   written.
   */
  async append(
    spec: MemorySpec,
    taskExecId: string,
    exchange: ConversationMessage[],
    spend: TaskSpend,
    signal?: AbortSignal,
  ): Promise<void> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
      const { doc, revision } = await this.load(spec);
      let next = appendExchange(doc, exchange, taskExecId, spec, MAX_MEMORY_DOCUMENT_BYTES);
      if (next === doc) return;
      next = await this.summarizeDropped(spec, doc, next, spend, signal);
      const bytes = encoder.encode(JSON.stringify(next));
      try {
        const kv = await this.bucket();
        if (revision === 0) await kv.create(await entryKey(spec.key), bytes);
        else await kv.update(await entryKey(spec.key), bytes, revision);
        return;
      } catch (error) {
        // Most likely another task wrote first: read again and append to what it wrote.
        lastError = error;
      }
    }
    throw unavailable(spec, `writing failed ${MAX_WRITE_ATTEMPTS} times`, lastError);
  }

  /**
   * `next` with what left `doc`'s window folded into its summary (when the memory summarizes and the task's
   * budgets cover the request); the request's usage is charged to `spend`.
   */
  private async summarizeDropped(
    spec: MemorySpec,
    doc: MemoryDocument,
    next: MemoryDocument,
    spend: TaskSpend,
    signal?: AbortSignal,
  ): Promise<MemoryDocument> {
    const dropped = doc.messages.filter((m) => !next.messages.includes(m));
    if (!spec.summarizer || dropped.length === 0) return next;
    const request = {
      model: spec.summarizer.model,
      maxTokens: spec.summarizer.maxTokens,
      previous: doc.summary,
      dropped: dropped.map(({ role, content }) => ({ role, content })),
    };
    if (!spend.affords(summaryEstimate(request))) {
      log.warn(
        "Agent memory {key}: {count} messages left the window unsummarized: the task's budget left does not cover a summary request",
        { key: spec.key, count: dropped.length },
      );
      return next;
    }
    let summarized: { summary: string; usage: TokenUsage };
    try {
      summarized = await this.summarize({ ...request, signal });
    } catch (error) {
      log.warn("Agent memory {key}: {count} messages left the window unsummarized: {error}", {
        key: spec.key,
        count: dropped.length,
        error: errorMessage(error),
      });
      return next;
    }
    spend.charge(summarized.usage);
    return { ...next, summary: summarized.summary };
  }

  private async load(spec: MemorySpec): Promise<{ doc: MemoryDocument; revision: number }> {
    let entry;
    const name = await entryKey(spec.key);
    try {
      entry = await (await this.bucket()).get(name);
    } catch (error) {
      throw unavailable(spec, "reading failed", error);
    }
    if (!entry || entry.operation !== "PUT") return { doc: { key: spec.key, messages: [] }, revision: 0 };
    try {
      return { doc: parseMemory(entry.value, spec.key), revision: entry.revision };
    } catch (error) {
      // Every task with this key fails the same way until the entry goes: say which one to delete.
      if (!(error instanceof AgentFailure)) throw error;
      throw new AgentFailure(
        error.code,
        `${error.message} (bucket ${BUCKETS.agentMemory}, entry ${name}: delete the entry to start this ` +
          "conversation afresh)",
        {
          retryable: false,
          details: { ...error.details, bucket: BUCKETS.agentMemory, entry: name },
          cause: error,
        },
      );
    }
  }

  private bucket(): Promise<KV> {
    this.#kv ??= new Kvm(this.nc).open(BUCKETS.agentMemory);
    return this.#kv;
  }
}

/**
 * The stored document of `key`.
 *
 * @throws {AgentFailure} `agent_memory_invalid` when it is not a conversation.
 */
export function parseMemory(bytes: Uint8Array, key: string): MemoryDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw invalid(key, "the stored conversation is not JSON", error);
  }
  const messages = (doc as { messages?: unknown })?.messages;
  const valid = Array.isArray(messages) &&
    messages.every((m) =>
      (m?.role === "user" || m?.role === "assistant") && typeof m.content === "string" &&
      typeof m.task === "string"
    );
  const summary = (doc as { summary?: unknown }).summary;
  if (!valid || (summary !== undefined && typeof summary !== "string")) {
    throw invalid(key, "the stored document is not a conversation (messages of role, content, task)");
  }
  return { key, messages: messages as StoredMessage[], ...(summary ? { summary } : {}) };
}

/**
 * `doc` with the exchange appended, cut to the window (messages, tokens) and to `maxBytes`; `doc` itself when
 * this task's messages are there already. The exchange itself is always kept.
 *
 * @throws {AgentFailure} `agent_memory_invalid` when the exchange alone does not fit in `maxBytes`.
 */
export function appendExchange(
  doc: MemoryDocument,
  exchange: ConversationMessage[],
  taskExecId: string,
  limits: WindowLimits,
  maxBytes: number,
): MemoryDocument {
  if (doc.messages.some((m) => m.task === taskExecId)) return doc;
  const own = exchange.map(({ role, content }) => ({ role, content, task: taskExecId }));
  const all = [...doc.messages, ...own];
  let messages = windowOf(all, {
    window: Math.max(limits.window, own.length),
    windowTokens: limits.windowTokens,
  });
  // The exchange stays whatever the token bound says: it is what this task adds.
  if (messages.length < own.length) messages = own;
  const size = (list: StoredMessage[]) =>
    encoder.encode(JSON.stringify({ key: doc.key, summary: doc.summary, messages: list })).length;
  while (size(messages) > maxBytes && messages.length > own.length) {
    messages = windowOf(messages.slice(1), { window: messages.length });
  }
  if (size(messages) > maxBytes) {
    throw invalid(
      doc.key,
      `this task's prompt and answer (${
        size(own)
      } bytes) do not fit in a memory document (${maxBytes} bytes)`,
    );
  }
  return { key: doc.key, messages, ...(doc.summary ? { summary: doc.summary } : {}) };
}

/**
 * The last `window` messages, and within `windowTokens` tokens, starting at a prompt (an answer without its
 * prompt would mislead the model).
 */
export function windowOf<M extends ConversationMessage>(messages: M[], limits: WindowLimits): M[] {
  let kept = messages.slice(Math.max(0, messages.length - limits.window));
  if (limits.windowTokens !== undefined) {
    let tokens = 0;
    let first = kept.length;
    while (first > 0) {
      tokens += Math.ceil(kept[first - 1].content.length / CHARS_PER_TOKEN);
      if (tokens > limits.windowTokens) break;
      first--;
    }
    kept = kept.slice(first);
  }
  const firstPrompt = kept.findIndex((m) => m.role === "user");
  return firstPrompt < 0 ? [] : kept.slice(firstPrompt);
}

async function entryKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(key));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function unavailable(spec: MemorySpec, what: string, cause: unknown): AgentFailure {
  return new AgentFailure(
    "agent_memory_unavailable",
    `agent memory '${spec.key}': ${what}: ${errorMessage(cause)}`,
    { retryable: true, details: { key: spec.key }, cause },
  );
}

function invalid(key: string, why: string, cause?: unknown): AgentFailure {
  return new AgentFailure("agent_memory_invalid", `agent memory '${key}': ${why}`, {
    retryable: false,
    details: { key },
    cause,
  });
}
