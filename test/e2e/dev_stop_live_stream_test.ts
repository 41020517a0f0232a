/**
 * Ctrl-C on `compozy dev` with a live event stream open (a console tab following a running execution, a
 * `run --wait`) is an orderly stop (outside review api35): the stream ends with one `event: error`
 * (`server_stopping`) and dev exits 0. Deno's graceful shutdown waited for the stream, which ends only with
 * its execution: dev said "stopping…" and stayed up (an hour, for this project's sleep).
 */
import assert from "node:assert/strict";
import { FIXTURE_PROJECT, startDev } from "./support/dev_server.ts";
import { SseReader } from "../support/sse_reader.ts";

Deno.test({
  name: "dev: Ctrl-C with a live stream open ends the stream, saying why, and exits 0",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dev = await startDev({ fixture: FIXTURE_PROJECT, env: { COMPOZY_LOG_LEVEL: "info" } });
    let stream: SseReader | undefined;
    try {
      const started = await dev.fetch("/api/workflows/slow/executions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      const { exec_id: execId } = await started.json();
      stream = await SseReader.open(dev.url, execId);
      await stream.until("task.waiting_started");
      const rest = stream.rest();
      // interrupt() SIGKILLs the group after 30 s: a dev held by the stream exits 137, not 0.
      const status = await dev.interrupt();
      assert.equal(status.code, 0, `exit ${status.code}\n${dev.lines.join("\n")}`);
      const messages = await rest;
      const last = messages.at(-1);
      assert.equal(last?.event, "error", JSON.stringify(messages));
      assert.equal(JSON.parse(last.data).error.code, "server_stopping");
      const stopping = dev.lines.findIndex((l) => /stopping…/.test(l));
      // Nothing alarming, and no line per open stream: a stop is routine.
      const logged = dev.lines.slice(stopping).filter((l) => l.startsWith('{"time"'));
      assert.deepEqual(logged, [], `no log line while stopping:\n${dev.lines.join("\n")}`);
    } finally {
      stream?.close();
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});
