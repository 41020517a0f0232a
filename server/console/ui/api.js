/**
 * The console's only way to the server: the API's own routes, same origin, with the API key (when the user
 * gave one) as `Authorization: Bearer`. Errors keep the API's shape ({code, message, details}) so that pages
 * can show them where they belong (a 422's fields at the fields).
 */

const KEY_STORAGE = "compozy.apiKey";

export class ApiFailure extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details) ? details : [];
  }
}

/** Listeners told when the server refuses the key (401/403), so the shell can ask for one. */
const authListeners = new Set();
export function onAuthFailure(fn) {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) ?? "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { authorization: `Bearer ${key}`, ...extra } : extra;
}

async function failure(res) {
  let body;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const error = body?.error;
  const failure = new ApiFailure(
    res.status,
    error?.code ?? `http_${res.status}`,
    error?.message ?? `The server answered ${res.status} ${res.statusText}`,
    error?.details,
  );
  if (res.status === 401 || res.status === 403) authListeners.forEach((fn) => fn(failure));
  return failure;
}

/** GET or POST a JSON route; resolves with the parsed body, rejects with an ApiFailure. */
export async function api(path, { method = "GET", body, rawBody, signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      signal,
      headers: headers(
        body !== undefined || rawBody !== undefined ? { "content-type": "application/json" } : {},
      ),
      body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiFailure(0, "network", `Cannot reach the server (${e.message})`, []);
  }
  if (!res.ok) throw await failure(res);
  return res.status === 204 ? null : await res.json();
}

/**
 * An execution's stored history, a page at a time (`GET …/events` pages it), up to about `maxEvents`: the
 * first ones. `more` says the history holds more than were read.
 */
export async function history(execId, { signal, maxEvents = 5000 } = {}) {
  const events = [];
  let cursor = null;
  do {
    const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
    const page = await api(`/api/executions/${encodeURIComponent(execId)}/events${query}`, { signal });
    events.push(...page.events);
    cursor = page.next_cursor ?? null;
  } while (cursor && events.length < maxEvents);
  return { events, more: cursor !== null };
}

/**
 * Follows an execution's live event stream (`GET /api/executions/{id}/events`, SSE). EventSource cannot send
 * the Authorization header, so the stream is read with fetch. Returns a stop function. With `deltas`, running
 * agents' live text comes too, as `agent.delta` records without a `seq` (never stored). With `after` (a `seq`),
 * the stream starts after that event instead of replaying the history. `onEnd` gets the error (an
 * ApiFailure for the server's `event: error`) when the stream ends before the execution, null otherwise.
 */
export function followEvents(execId, onEvent, onEnd, { deltas = false, after = 0 } = {}) {
  const controller = new AbortController();
  (async () => {
    const query = deltas ? "?deltas=true" : "";
    const res = await fetch(`/api/executions/${encodeURIComponent(execId)}/events${query}`, {
      headers: headers({
        accept: "text/event-stream",
        ...(after > 0 ? { "last-event-id": String(after) } : {}),
      }),
      signal: controller.signal,
    });
    if (!res.ok) throw await failure(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = block.split("\n");
        const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart());
        if (!data.length) continue;
        const parsed = JSON.parse(data.join("\n"));
        // The server ends a stream whose follow failed with one `event: error` (the API's error body): an
        // ended stream, not an event (it has no seq), so the page says it and follows again.
        if (lines.some((l) => /^event:\s*error$/.test(l))) {
          const error = parsed?.error;
          throw new ApiFailure(
            res.status,
            error?.code ?? "events_unavailable",
            error?.message ?? data.join("\n"),
            error?.details,
          );
        }
        onEvent(parsed);
      }
    }
  })().then(() => onEnd?.(null), (e) => {
    if (e.name !== "AbortError") onEnd?.(e);
  });
  return () => controller.abort();
}

export const TERMINAL = new Set(["SUCCESS", "FAILED", "TIMED_OUT", "CANCELED", "SKIPPED"]);
