/**
 * Production roles on one NATS: two engine processes, a runtime and an API as separate `compozy start`
 * processes. An execution started through the API runs to its end across them, and a per-second schedule
 * fires each tick once although both engines run it (every execution's idempotency key names a distinct tick).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { credentialsEnv, type NatsRole } from "../../pkg/nats/auth.ts";
import { startTestNats } from "../support/nats.ts";
import { copyProject, FIXTURE_PROJECT, spawnCompozy, startAndWait } from "./support/dev_server.ts";

const TICK_WORKFLOW = `id: tick
triggers:
  - type: schedule
    config: { cron: "* * * * * *", input: { text: "tick" } }
tools:
  - { id: shout, execute: ./tools/shout.ts }
tasks:
  - id: shout
    use: tool(id=shout)
    with: { text: "{{ .workflow.input.text }}" }
`;

Deno.test({
  name: "compozy start: api, two engines and a runtime as separate processes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nats = await startTestNats();
    const dir = await copyProject(FIXTURE_PROJECT);
    await Deno.writeTextFile(join(dir, "workflows/tick.yaml"), TICK_WORKFLOW);
    const project = await Deno.readTextFile(join(dir, "compozy.yaml"));
    await Deno.writeTextFile(
      join(dir, "compozy.yaml"),
      project.replace("workflows:\n", "workflows:\n  - source: ./workflows/tick.yaml\n"),
    );
    // Each process with its role's user, as docs/operations.md sets up a NATS_URL deployment.
    const env = (role: NatsRole) => ({
      NATS_URL: nats.plainUrl,
      ...credentialsEnv(nats.auth.users[role]),
      COMPOZY_LOG_LEVEL: "info",
      LOG_FORMAT: "json",
    });
    const processes = [
      spawnCompozy(["start", "--role", "engine", "--cwd", dir, "--instance-id", "engine-a"], env("engine")),
      spawnCompozy(["start", "--role", "engine", "--cwd", dir, "--instance-id", "engine-b"], env("engine")),
      spawnCompozy(["start", "--role", "runtime", "--cwd", dir], env("runtime")),
      spawnCompozy(
        ["start", "--role", "api", "--cwd", dir, "--host", "127.0.0.1", "--port", "0"],
        env("api"),
      ),
    ];
    try {
      const started = await processes[3].waitForLine(/"message":"compozy \S+ started".*"role":"api"/, 60_000);
      const url = JSON.parse(started).api as string;
      const deadline = Date.now() + 60_000;
      while ((await fetch(`${url}/api/health`).then((r) => r.body?.cancel().then(() => r.status))) !== 200) {
        assert.ok(Date.now() < deadline, "the roles became healthy");
        await new Promise((r) => setTimeout(r, 200));
      }

      const state = await startAndWait(url, "hello", { name: "Roles" });
      assert.equal(state.status, "SUCCESS", JSON.stringify(state));
      assert.deepEqual(state.output, { greeting: "Hello, Roles!", shouted: "HELLO, ROLES!" });

      await new Promise((r) => setTimeout(r, 3_500));
      const { items } = await (await fetch(`${url}/api/executions?workflow_id=tick&limit=500`)).json();
      assert.ok(items.length >= 2, `the schedule fired (${items.length} executions)`);
      // Each execution records the idempotency key it was started with: one per tick, so all distinct.
      const keys = await Promise.all(items.map(async (item: { exec_id: string }) => {
        const { events } = await (await fetch(`${url}/api/executions/${item.exec_id}/events`)).json();
        return events.find((e: { type: string }) => e.type === "workflow.started").data
          .idempotencyKey as string;
      }));
      assert.ok(keys.every((k) => k.startsWith("schedule:tick:")), keys.join(", "));
      assert.equal(new Set(keys).size, keys.length, `a tick started twice: ${keys.sort().join(", ")}`);
      // Every role did all of the above within its permissions.
      const violations = nats.server.logTail().split("\n").filter((line) => line.includes("Violation"));
      assert.deepEqual(violations, []);
    } finally {
      await Promise.all(processes.map((p) => p.stop()));
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
