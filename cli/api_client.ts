/**
 * The HTTP client of the CLI's remote commands (`run`, `executions`, `deploy`). An API error body becomes a
 * CliError with the server's message and details; 5xx answers are internal errors (exit 2), 4xx user errors.
 *
 * @module
 */
import type { LiveDelta } from "../engine/client.ts";
import type { EventRecord, ExecutionState } from "../engine/state/execution_state.ts";
import { CliError, EXIT_INTERNAL, EXIT_USER_ERROR } from "./cli_error.ts";

export class ApiClient {
  constructor(readonly baseUrl: string, private readonly apiKey?: string) {}

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const res = await this.fetch(path, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed = text ? parseJson(text) : undefined;
    if (!res.ok) throw apiError(res.status, parsed, `${method} ${path}`);
    if (isNotJson(parsed)) {
      // Another web server on that port: its page, read as an answer, was an internal error (no `items`).
      throw new CliError(
        `${this.baseUrl} answered ${method} ${path} with something not JSON ` +
          `(${res.headers.get("content-type") ?? "no content type"}): is it a Compozy server?`,
        [`it began: ${text.slice(0, 120)}`],
      );
    }
    return parsed as T;
  }

  state(execId: string): Promise<ExecutionState> {
    return this.request<ExecutionState>("GET", `/api/executions/${encodeURIComponent(execId)}`);
  }

  /**
   * The events of an execution's stored history that `keep` accepts, in order, read a page at a time (the
   * history of a big execution is too large for one answer: `GET …/events` pages it).
   */
  async events(
    execId: string,
    keep: (event: EventRecord) => boolean = () => true,
    pageSize?: number,
  ): Promise<EventRecord[]> {
    const kept: EventRecord[] = [];
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams();
      if (pageSize) query.set("limit", String(pageSize));
      if (cursor) query.set("cursor", cursor);
      const page: { events: EventRecord[]; next_cursor?: string | null } = await this.request(
        "GET",
        `/api/executions/${encodeURIComponent(execId)}/events${query.size ? `?${query}` : ""}`,
      );
      kept.push(...page.events.filter(keep));
      // A server without paging answers the whole history and no cursor.
      cursor = page.next_cursor ?? null;
    } while (cursor);
    return kept;
  }

  /**
   * Follows an execution's events over SSE until the stream ends (after the terminal event) or `signal`
   * aborts it; with `deltas`, running agents' live text too (`agent.delta`, which has no `seq`). A stream the
   * server ends with an `event: error` message (its follow of the events failed) throws a CliError with the
   * server's message, exit 2: it was read as an event, and the wait went on as if nothing had happened.
   */
  async followEvents(
    execId: string,
    onEvent: (event: EventRecord | LiveDelta) => void,
    signal?: AbortSignal,
    options: { deltas?: boolean } = {},
  ): Promise<void> {
    const query = options.deltas ? "?deltas=true" : "";
    const res = await this.fetch(`/api/executions/${encodeURIComponent(execId)}/events${query}`, {
      headers: { accept: "text/event-stream" },
      signal,
    });
    if (!res.ok) throw apiError(res.status, parseJson(await res.text()), "GET events");
    let buffer = "";
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = message.split("\n");
        const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart());
        if (data.length === 0) continue;
        const parsed = JSON.parse(data.join("\n"));
        if (lines.some((l) => /^event:\s*error$/.test(l))) throw streamError(execId, parsed);
        onEvent(parsed as EventRecord | LiveDelta);
      }
    }
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.apiKey) headers.set("authorization", `Bearer ${this.apiKey}`);
    try {
      return await fetch(`${this.baseUrl}${path}`, { ...init, headers });
    } catch (e) {
      if (init.signal?.aborted) throw e;
      throw new CliError(
        `Cannot reach the Compozy server at ${this.baseUrl}: ${(e as Error).message}`,
        ["Is `compozy dev` (or `compozy start`) running? Set --server or COMPOZY_SERVER to point elsewhere."],
        EXIT_USER_ERROR,
        { cause: e },
      );
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { error: { code: NOT_JSON, message: text.slice(0, 500), details: [] } };
  }
}

const NOT_JSON = "not_json";

function isNotJson(parsed: unknown): boolean {
  return (parsed as { error?: { code?: string } } | undefined)?.error?.code === NOT_JSON;
}

/** The error message that ended a live stream, as the CLI's error (an internal one: the server's follow failed). */
function streamError(execId: string, body: unknown): CliError {
  const error = (body as { error?: { code?: string; message?: string } })?.error;
  return new CliError(
    `The server ended the live events of ${execId}: ${error?.message ?? JSON.stringify(body)}` +
      `${error?.code ? ` (${error.code})` : ""}`,
    [`the execution itself may still run: compozy executions show ${execId}`],
    EXIT_INTERNAL,
  );
}

function apiError(status: number, body: unknown, what: string): CliError {
  const error = (body as { error?: { code?: string; message?: string; details?: unknown[] } })?.error;
  const message = error?.message ?? `${what} failed with HTTP ${status}`;
  const details = (error?.details ?? []).map((d) => typeof d === "string" ? d : JSON.stringify(d));
  if (error?.code === "unauthorized" || error?.code === "forbidden") {
    details.push("Give the server's API key with --api-key or COMPOZY_API_KEY");
  }
  return new CliError(
    `${message} (HTTP ${status}${error?.code ? `, ${error.code}` : ""})`,
    details,
    status >= 500 ? EXIT_INTERNAL : EXIT_USER_ERROR,
  );
}
