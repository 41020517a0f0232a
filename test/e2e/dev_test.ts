/**
 * End to end: `compozy dev` as a subprocess on a temporary project, driven over real HTTP (and the CLI),
 * with a real NATS, engine and runtime. Webhook and API starts, the live SSE stream, a signal to a waiting
 * execution, the cancel of another, state and history, metrics and logs, a reload under --watch that keeps a
 * waiting execution, and a build whose deploy is refused without an API key.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { signBody } from "../../server/constant_time.ts";
import { FIXTURE_PROJECT, runCli, startDev } from "./support/dev_server.ts";

interface State {
  exec_id: string;
  status: string;
  output: unknown;
  tasks: Array<{ task_id: string; status: string }>;
}

const SECRET = "e2e-webhook-secret";
const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json", ...headers },
});

Deno.test({
  name: "compozy dev end to end",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dev = await startDev({ fixture: FIXTURE_PROJECT, args: ["--watch"] });
    const state = async (execId: string): Promise<State> =>
      await (await dev.fetch(`/api/executions/${execId}`)).json();
    const until = async (execId: string, ok: (s: State) => boolean, timeoutMs = 20_000): Promise<State> => {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        const s = await state(execId);
        if (ok(s)) return s;
        if (Date.now() > deadline) throw new Error(`execution ${execId} stayed ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const start = async (workflow: string, input: unknown, headers: Record<string, string> = {}) =>
      await dev.fetch(`/api/workflows/${workflow}/executions`, json({ input }, headers));

    try {
      await t.step("health is 200 and names NATS, the engine and the runtime", async () => {
        const res = await dev.fetch("/api/health");
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        assert.deepEqual(Object.keys(body.components).sort(), ["engine", "nats", "runtime"]);
      });

      let webhookExec = "";
      await t.step("a signed webhook starts the workflow; SSE follows it to the end", async () => {
        const body = JSON.stringify({ user: { name: "Ada" } });
        const res = await dev.fetch("/api/webhooks/hello", {
          method: "POST",
          body,
          headers: {
            "content-type": "application/json",
            "x-compozy-signature": signBody(SECRET, new TextEncoder().encode(body)),
          },
        });
        assert.equal(res.status, 202);
        webhookExec = (await res.json()).exec_id;
        const stream = await dev.fetch(`/api/executions/${webhookExec}/events`, {
          headers: { accept: "text/event-stream" },
        });
        assert.equal(stream.status, 200);
        assert.match(stream.headers.get("content-type")!, /text\/event-stream/);
        const text = await stream.text(); // the server ends the stream after the terminal event
        const types = [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
        assert.equal(types[0], "workflow.started");
        assert.equal(types.at(-1), "workflow.success");
        assert.equal(types.filter((t) => t === "task.success").length, 2, types.join(", "));
        const final = await state(webhookExec);
        assert.equal(final.status, "SUCCESS");
        assert.deepEqual(final.output, { greeting: "Hello, Ada!", shouted: "HELLO, ADA!" });
      });

      await t.step("a webhook with a bad signature is 401 and starts nothing", async () => {
        const before = (await (await dev.fetch("/api/executions?workflow_id=hello")).json()).items.length;
        const res = await dev.fetch(
          "/api/webhooks/hello",
          json({ user: { name: "Eve" } }, { "x-compozy-signature": "sha256=00" }),
        );
        assert.equal(res.status, 401);
        assert.equal((await res.json()).error.code, "invalid_signature");
        const after = (await (await dev.fetch("/api/executions?workflow_id=hello")).json()).items.length;
        assert.equal(after, before);
      });

      await t.step("an API start with ?wait= answers with the final state", async () => {
        const s = await dev.run("hello", { name: "Bo" });
        assert.equal(s.status, "SUCCESS");
        assert.deepEqual(s.tasks.map((x) => x.task_id).sort(), ["greet", "shout"]);
      });

      await t.step("a repeated Idempotency-Key returns the first execution", async () => {
        const first = await start("hello", { name: "Cy" }, { "idempotency-key": "e2e-key-1" });
        const again = await start("hello", { name: "Cy" }, { "idempotency-key": "e2e-key-1" });
        assert.deepEqual([first.status, again.status], [202, 200]);
        assert.equal((await again.json()).exec_id, (await first.json()).exec_id);
      });

      await t.step("an input failing the workflow's schema is 422 with the field", async () => {
        const res = await start("hello", { name: "" });
        const body = await res.json();
        assert.equal(res.status, 422, JSON.stringify(body));
        assert.equal(body.error.details[0].path, "/name");
      });

      await t.step("a signal reaches a waiting execution; a non-matching one leaves it waiting", async () => {
        const execId = (await (await start("approval", { item: "laptop" })).json()).exec_id;
        await until(execId, (s) => s.status === "WAITING");
        const miss = await dev.fetch(`/api/executions/${execId}/signals/approve`, json({ ok: false }));
        assert.equal(miss.status, 202);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal((await state(execId)).status, "WAITING");
        const hit = await dev.fetch(
          `/api/executions/${execId}/signals/approve`,
          json({ ok: true, by: "ann" }),
        );
        assert.equal(hit.status, 202);
        const done = await until(execId, (s) => s.status === "SUCCESS");
        assert.deepEqual(done.output, { result: "LAPTOP APPROVED BY ANN" });
        const late = await dev.fetch(`/api/executions/${execId}/signals/approve`, json({ ok: true }));
        assert.equal(late.status, 409);
      });

      await t.step("cancel stops a sleeping execution; a second cancel is 409", async () => {
        const execId = (await (await start("slow", {})).json()).exec_id;
        await until(execId, (s) => s.tasks.some((x) => x.task_id === "nap"));
        assert.equal(
          (await dev.fetch(`/api/executions/${execId}/cancel`, json({ reason: "e2e" }))).status,
          202,
        );
        await until(execId, (s) => s.status === "CANCELED");
        const again = await dev.fetch(`/api/executions/${execId}/cancel`, { method: "POST" });
        assert.equal(again.status, 409);
        const { events } = await (await dev.fetch(`/api/executions/${execId}/events`)).json();
        assert.ok(events.some((e: { type: string }) => e.type === "workflow.canceled"));
      });

      await t.step(
        "pause and resume a sleeping execution; a broadcast signal reaches every waiting one",
        async () => {
          const sleeper = (await (await start("slow", {})).json()).exec_id;
          await until(sleeper, (s) => s.tasks.some((x) => x.task_id === "nap"));
          assert.equal((await dev.fetch(`/api/executions/${sleeper}/pause`, { method: "POST" })).status, 202);
          await until(sleeper, (s) => s.status === "PAUSED");
          assert.equal(
            (await dev.fetch(`/api/executions/${sleeper}/resume`, { method: "POST" })).status,
            202,
          );
          await until(sleeper, (s) => s.status !== "PAUSED");
          await dev.fetch(`/api/executions/${sleeper}/cancel`, { method: "POST" });

          const waiting = await Promise.all(
            ["a", "b"].map(async (item) =>
              (await (await start("approval", { item })).json()).exec_id as string
            ),
          );
          for (const id of waiting) await until(id, (s) => s.status === "WAITING");
          const res = await dev.fetch("/api/signals/approve", json({ ok: true, by: "all" }));
          assert.equal(res.status, 200);
          assert.deepEqual((await res.json()).delivered_to.sort(), [...waiting].sort());
          for (const id of waiting) await until(id, (s) => s.status === "SUCCESS");
        },
      );

      await t.step("the live log printed the runs", async () => {
        await dev.waitForLine(new RegExp(`hello …${webhookExec.slice(-8)} ✓ SUCCESS`));
        await dev.waitForLine(/slow …\w+ ■ CANCELED/);
      });

      await t.step("the CLI runs a workflow against the server and shows its progress", async () => {
        const run = await runCli(["run", "hello", "--input", '{"name":"Di"}', "--wait", "--server", dev.url]);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /✓ SUCCESS/);
        assert.match(run.stdout, /HELLO, DI!/);
        // A --timeout past setTimeout's range (2^31-1 ms, about 24.8 days) waits too: it once ended the wait
        // at once, with "still RUNNING after 43200m0s" and exit 1.
        const long = await runCli([
          "run",
          "hello",
          "--input",
          '{"name":"Lu"}',
          "--wait",
          "--timeout",
          "30d",
          "--server",
          dev.url,
        ]);
        assert.equal(long.code, 0, long.stdout + long.stderr);
        assert.match(long.stdout, /HELLO, LU!/);
        // An --input-file saved with a UTF-8 byte order mark (Notepad, PowerShell) is JSON too: it was refused
        // as "Unexpected token '\uFEFF'", a character the terminal does not show.
        await Deno.writeTextFile(join(dev.dir, "bom.json"), '\uFEFF{"name":"Bo"}');
        const bom = await runCli(
          ["run", "hello", "--input-file", "bom.json", "--cwd", dev.dir, "--wait", "--server", dev.url],
        );
        assert.equal(bom.code, 0, bom.stdout + bom.stderr);
        assert.match(bom.stdout, /HELLO, BO!/);
        const list = await runCli([
          "executions",
          "list",
          "--workflow",
          "hello",
          "--json",
          "--server",
          dev.url,
        ]);
        assert.equal(list.code, 0, list.stderr);
        assert.ok(JSON.parse(list.stdout).items.length >= 3);
        const show = await runCli(["executions", "show", webhookExec, "--server", dev.url]);
        assert.match(show.stdout, /SUCCESS/);
        const bad = await runCli(["run", "hello", "--input", '{"name":""}', "--server", dev.url]);
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /error: .*input_invalid/);
      });

      await t.step("metrics count executions by status; logs are readable", async () => {
        const text = await (await dev.fetch("/api/metrics")).text();
        assert.match(text, /compozy_workflow_executions_total\{status="success"\} \d+/);
        assert.match(text, /compozy_task_duration_seconds_count\{status="success"\} \d+/);
        assert.match(text, /compozy_queue_depth\{stream="WORKFLOW_CMDS"\} \d+/);
        const logs = await dev.fetch(`/api/logs?exec_id=${webhookExec}`);
        assert.equal(logs.status, 200);
        assert.ok(Array.isArray((await logs.json()).items));
      });

      await t.step("--watch reloads definitions and a waiting execution survives the reload", async () => {
        const execId = (await (await start("approval", { item: "desk" })).json()).exec_id;
        await until(execId, (s) => s.status === "WAITING");
        const file = join(dev.dir, "workflows/hello.yaml");
        await Deno.writeTextFile(
          file,
          (await Deno.readTextFile(file)).replace("id: hello", "id: hello\ndescription: reloaded"),
        );
        await dev.waitForLine(/^reloaded \(workflows\/hello.yaml\)/);
        const hello = await (await dev.fetch("/api/workflows/hello")).json();
        assert.equal(hello.description, "reloaded");
        await dev.fetch(`/api/executions/${execId}/signals/approve`, json({ ok: true, by: "bob" }));
        const done = await until(execId, (s) => s.status === "SUCCESS");
        assert.deepEqual(done.output, { result: "DESK APPROVED BY BOB" });
      });

      await t.step("a project with errors is not reloaded; the old definitions keep serving", async () => {
        const file = join(dev.dir, "workflows/slow.yaml");
        await Deno.writeTextFile(file, "id: slow\ntasks: []\n");
        await dev.waitForLine(/^not reloaded \(workflows\/slow.yaml\)/);
        assert.equal((await dev.fetch("/api/workflows/slow")).status, 200);
        await Deno.writeTextFile(
          join(dev.dir, "workflows/slow.yaml"),
          await Deno.readTextFile(join(FIXTURE_PROJECT, "workflows/slow.yaml")),
        );
        await dev.waitForLine(/^reloaded \(workflows\/slow.yaml\)/);
      });

      await t.step("build, then a deploy to a dev server without an API key is refused", async () => {
        const build = await runCli(["build", "--cwd", dev.dir, "--out", "dist"]);
        assert.equal(build.code, 0, build.stderr);
        assert.match(build.stdout, /wrote dist\/e2e-0\.1\.0\.compozy\.json/);
        // Deployments need the API key, dev included (red team 4 F1); redteam4_api_test.ts deploys with one.
        const deploy = await runCli(["deploy", "--cwd", dev.dir, "--server", dev.url]);
        assert.equal(deploy.code, 1, deploy.stdout);
        assert.match(deploy.stderr, /API key/);
      });
    } finally {
      await dev.stop();
      await Deno.remove(dev.dir, { recursive: true });
    }
  },
});
