/**
 * Resuming the live stream with `Last-Event-ID` (outside review B8), over real HTTP against a real engine and
 * nats-server: an id past the stream's end (a client that remembers an id of an earlier store) still sees the
 * stream close once the execution ends, instead of holding it open for ever; an id within the history resumes
 * after it; a malformed id is a 400 naming the header, not a silent replay from the start.
 */
import assert from "node:assert/strict";
import type { EngineHarness } from "../support/engine.ts";
import { withEngineApi } from "../support/engine_api.ts";

const FILES = {
  "compozy.yaml": "name: sse\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": `id: wait
tasks:
  - id: w
    type: wait
    signal: go
    timeout: 5m
  - id: done
    type: aggregate
    outputs: { ok: true }
`,
};

/** A generous bound on how long a stream may take to close once its execution ended (not a timing check). */
const CLOSE_BOUND_MS = 60_000;

function withApi(fn: (base: string, h: EngineHarness) => Promise<void>): Promise<void> {
  return withEngineApi(FILES, fn);
}

function openStream(base: string, execId: string, lastEventId?: string, signal?: AbortSignal) {
  return fetch(`${base}/api/executions/${execId}/events`, {
    headers: {
      accept: "text/event-stream",
      ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }),
    },
    signal,
  });
}

/** The ids of the SSE messages of a stream, read until it closes (or the bound passes: then it throws). */
async function idsUntilClosed(response: Response, controller: AbortController): Promise<number[]> {
  const timer = setTimeout(() => controller.abort(new Error("the stream stayed open")), CLOSE_BOUND_MS);
  try {
    const text = await response.text();
    return [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("Last-Event-ID: past the end, within the history, malformed", async (t) => {
  await withApi(async (base, h) => {
    const { execId } = await h.engine.client.trigger("wait", {});
    while ((await h.engine.client.get(execId))?.status !== "WAITING") {
      await new Promise((r) => setTimeout(r, 20));
    }
    const history = await h.engine.client.events(execId);

    await t.step("a malformed id is a 400 naming the header", async () => {
      for (const id of ["abc", "-1", "1e3", "12.5", "9".repeat(40)]) {
        const response = await openStream(base, execId, id);
        if (response.status !== 400) await response.body?.cancel();
        assert.equal(response.status, 400, `${id}: a stream was opened`);
        const body = await response.json();
        assert.equal(body.error.code, "invalid_header");
        assert.ok(body.error.message.includes("Last-Event-ID"), body.error.message);
        assert.deepEqual(body.error.details, [{ header: "Last-Event-ID" }]);
      }
    });

    await t.step("past the end: the stream closes once the execution ends, sending nothing", async () => {
      const past = new AbortController();
      const within = new AbortController();
      const pastStream = await openStream(base, execId, "99999999999", past.signal);
      const resumeAfter = history[1].seq;
      const withinStream = await openStream(base, execId, String(resumeAfter), within.signal);
      assert.equal(pastStream.status, 200);
      assert.equal(withinStream.status, 200);
      await h.engine.client.signal(execId, "go", { ok: 1 });
      const [pastIds, withinIds] = await Promise.all([
        idsUntilClosed(pastStream, past),
        idsUntilClosed(withinStream, within),
      ]);
      assert.deepEqual(pastIds, []);
      const whole = await h.engine.client.events(execId);
      assert.equal(whole.at(-1)?.type, "workflow.success");
      assert.deepEqual(withinIds, whole.filter((e) => e.seq > resumeAfter).map((e) => e.seq));
    });

    await t.step("past the end of an ended execution: closes at once", async () => {
      const controller = new AbortController();
      assert.deepEqual(
        await idsUntilClosed(await openStream(base, execId, "99999999999", controller.signal), controller),
        [],
      );
    });
  });
});
