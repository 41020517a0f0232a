/**
 * A live event stream whose follow fails ends visibly (outside review api35), over real HTTP against a real
 * engine and nats-server: with the EVENTS stream deleted under it, the client gets one `event: error`
 * message naming what happened and the stream closes, and the server logs it with the execution's id (it
 * sent keep-alives and nothing else, for ever). A follow that recovers does not end: a NATS restart, or the
 * ordered consumer deleted alone, and the stream goes on to the execution's end.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { withEngineApi } from "../support/engine_api.ts";
import { withCapturedLog } from "../support/log_capture.ts";
import { until } from "../support/until.ts";
import { spawnCompozy } from "../e2e/support/dev_server.ts";
import { SseReader, STALL_BOUND_MS } from "../support/sse_reader.ts";

const FILES = {
  "compozy.yaml": "name: sse-lost\nworkflows:\n  - source: ./wf.yaml\n",
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

async function signal(base: string, execId: string): Promise<void> {
  // Right after a NATS restart the API may answer 503 a moment; the signal is sent once it is taken.
  await until(async () => {
    const response = await fetch(`${base}/api/executions/${execId}/signals/go`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    await response.body?.cancel();
    return response.status === 202;
  }, 60_000);
}

Deno.test("a live stream whose EVENTS stream is deleted ends with an error event, logged", async () => {
  await withCapturedLog(async (log) => {
    await withEngineApi(FILES, async (base, h) => {
      const { execId } = await h.engine.client.trigger("wait", {});
      const stream = await SseReader.open(base, execId);
      try {
        await stream.until("workflow.started");
        const jsm = await jetstreamManager(h.nc);
        await jsm.streams.delete(STREAMS.events);
        const rest = await stream.rest();
        const last = rest.at(-1);
        assert.equal(last?.event, "error", `the stream closed without an error: ${JSON.stringify(rest)}`);
        const body = JSON.parse(last.data);
        assert.equal(body.error.code, "events_unavailable");
        assert.ok(body.error.message.includes(execId), body.error.message);
        assert.ok(body.error.message.includes(`${STREAMS.events} stream was deleted`), body.error.message);
        assert.equal(last.id, undefined, "an error is no stored event: it has no id");
        const logged = log.records("Live event stream", execId);
        assert.equal(logged.length, 1, log.text());
        assert.equal(logged[0].level, "error");
        // A reconnect finds no stream to follow: told at once the same way, not left open.
        const again = await SseReader.open(base, execId);
        try {
          const messages = await again.rest();
          assert.equal(messages.at(-1)?.event, "error", JSON.stringify(messages));
          assert.equal(JSON.parse(messages.at(-1)!.data).error.code, "events_unavailable");
        } finally {
          again.close();
        }
      } finally {
        stream.close();
      }
    });
  });
});

Deno.test("compozy run --wait exits 2 with one clear line when the server loses the live stream", async () => {
  await withEngineApi(FILES, async (base, h) => {
    const run = spawnCompozy(["run", "wait", "--wait", "--server", base]);
    try {
      await run.waitForLine(/⏸/, 120_000);
      const jsm = await jetstreamManager(h.nc);
      await jsm.streams.delete(STREAMS.events);
      // Bounded (not a timing check): a follow that stalls never exits.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`run --wait did not exit:\n${run.lines.join("\n")}`)),
          STALL_BOUND_MS,
        );
      });
      const status = await Promise.race([run.status, stalled]).finally(() => clearTimeout(timer));
      const output = run.lines.join("\n");
      assert.equal(status.code, 2, output);
      assert.ok(
        run.lines.some((l) => /The server ended the live events of \S+: .*EVENTS stream was deleted/.test(l)),
        output,
      );
      assert.ok(!output.includes("    at "), `a stack trace: ${output}`);
    } finally {
      await run.stop();
    }
  });
});

Deno.test("a live stream outlives a NATS restart and its consumer's deletion, to the execution's end", async (t) => {
  await withEngineApi(FILES, async (base, h) => {
    await t.step("a NATS crash and restart 8 s later", async () => {
      const { execId } = await h.engine.client.trigger("wait", {});
      const stream = await SseReader.open(base, execId);
      try {
        await stream.until("workflow.started");
        await h.nats.restart({ crash: true, downMs: 8_000 });
        await signal(base, execId);
        const rest = await stream.rest();
        const types = rest.map((m) => m.event);
        assert.ok(!types.includes("error"), `an error: ${JSON.stringify(rest.at(-1))}`);
        assert.equal(types.at(-1), "workflow.success", types.join(", "));
      } finally {
        stream.close();
      }
    });

    await t.step("the ordered consumer deleted alone", async () => {
      const { execId } = await h.engine.client.trigger("wait", {});
      const state = await h.engine.client.get(execId);
      const stream = await SseReader.open(base, execId);
      try {
        await stream.until("workflow.started");
        const jsm = await jetstreamManager(h.nc);
        const ours = [];
        for await (const consumer of jsm.consumers.list(STREAMS.events)) {
          const filters = consumer.config.filter_subjects ?? [consumer.config.filter_subject];
          if (filters.some((f) => f?.includes(state!.correlation_id))) ours.push(consumer.name);
        }
        assert.equal(ours.length, 1, `the stream's consumers: ${ours.join(", ")}`);
        await jsm.consumers.delete(STREAMS.events, ours[0]);
        await signal(base, execId);
        const rest = await stream.rest();
        const types = rest.map((m) => m.event);
        assert.ok(!types.includes("error"), `an error: ${JSON.stringify(rest.at(-1))}`);
        assert.equal(types.at(-1), "workflow.success", types.join(", "));
      } finally {
        stream.close();
      }
    });
  });
});
