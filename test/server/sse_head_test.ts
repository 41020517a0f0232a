/**
 * `HEAD` of a live stream opens nothing (outside review api35), over real HTTP against a real engine and
 * nats-server: Hono answers HEAD with the GET handler and drops the body unread, so each HEAD with `Accept:
 * text/event-stream` left a follow of the execution running (an ordered consumer on the EVENTS stream and its
 * loop) for as long as the execution ran.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { withEngineApi } from "../support/engine_api.ts";

const FILES = {
  "compozy.yaml": "name: sse-head\nworkflows:\n  - source: ./wf.yaml\n",
  "wf.yaml": "id: wait\ntasks:\n  - id: w\n    type: wait\n    signal: go\n    timeout: 5m\n",
};

Deno.test("HEAD of a live stream answers its headers and follows nothing", async () => {
  await withEngineApi(FILES, async (base, h) => {
    const { execId } = await h.engine.client.trigger("wait", {});
    const state = await h.engine.client.get(execId);
    const jsm = await jetstreamManager(h.nc);
    const followers = async () => {
      let n = 0;
      for await (const consumer of jsm.consumers.list(STREAMS.events)) {
        const filters = consumer.config.filter_subjects ?? [consumer.config.filter_subject];
        if (filters.some((f) => f?.includes(state!.correlation_id))) n++;
      }
      return n;
    };
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${base}/api/executions/${execId}/events`, {
        method: "HEAD",
        headers: { accept: "text/event-stream" },
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/event-stream");
      await response.body?.cancel();
    }
    // A GET's stream, opened and read to its first event, is one follower: the count is not blind.
    const get = await fetch(`${base}/api/executions/${execId}/events`, {
      headers: { accept: "text/event-stream" },
    });
    const reader = get.body!.getReader();
    await reader.read();
    assert.equal(await followers(), 1, "the GET's follower only");
    await reader.cancel();
    const unknown = await fetch(`${base}/api/executions/nope/events`, {
      method: "HEAD",
      headers: { accept: "text/event-stream" },
    });
    assert.equal(unknown.status, 404);
  });
});
