/**
 * A signal that does nothing says why in the execution's own logs (`GET /api/logs?exec_id=`, what
 * `compozy executions logs` prints), not only in the server's: a signal whose name has a typo (no wait
 * listens for it), and one whose payload the wait's condition refuses. Before, both lines went to the
 * engine's own log subject and the execution's logs had nothing. Against a real `compozy dev`.
 */
import assert from "node:assert/strict";
import { startDevOn } from "./support/dev_server.ts";
import { until } from "../support/until.ts";

const FILES: Record<string, string> = {
  "compozy.yaml": "name: dropped-signals\nworkflows:\n  - source: ./approval.yaml\n",
  "approval.yaml": `id: approval
tasks:
  - id: await-decision
    type: wait
    signal: decision
    condition: "{{ .signal.payload.ok == true }}"
    timeout: 1h
    final: true
`,
};

interface LogRecord {
  message: string;
  exec_id: string | null;
  level: string;
}

Deno.test({
  name: "a dropped signal is said in the execution's logs, with the reason",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dev = await startDevOn(FILES, { COMPOZY_LOG_LEVEL: "info" });
    const post = (path: string, body: unknown) =>
      dev.fetch(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    try {
      const execId = (await (await post("/api/workflows/approval/executions", {})).json()).exec_id as string;
      const status = async () => (await (await dev.fetch(`/api/executions/${execId}`)).json()).status;
      await until(async () => await status() === "WAITING");
      assert.equal((await post(`/api/executions/${execId}/signals/decison`, {})).status, 202);
      assert.equal((await post(`/api/executions/${execId}/signals/decision`, { ok: false })).status, 202);

      const logs = async () =>
        ((await (await dev.fetch(`/api/logs?exec_id=${execId}`)).json()).items as LogRecord[])
          .filter((r) => /^signal /.test(r.message));
      await until(async () => (await logs()).some((r) => /decision .* dropped/.test(r.message)));
      const lines = await logs();
      assert.ok(
        lines.some((r) => r.message === `signal decison to ${execId} dropped: no wait of it listens for it`),
        JSON.stringify(lines),
      );
      assert.ok(
        lines.some((r) =>
          r.message ===
            `signal decision to ${execId} dropped: no wait for it took it (its condition refused it, or the wait ended first)`
        ),
        JSON.stringify(lines),
      );
      for (const line of lines) assert.equal(line.exec_id, execId);
      assert.equal(await status(), "WAITING");
    } finally {
      await dev.close();
    }
  },
});
