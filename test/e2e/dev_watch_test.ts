/**
 * `compozy dev --watch` while a tool call runs (outside review B5): files that are not the project's code or
 * configuration (notes, a README, .git) reload nothing; a save of a tool module restarts the runtime, whose
 * calls in flight finish on the code they started with (the old runtime drains) while new calls get the new
 * code. Before, every save closed the runtime's tool runner and the running call failed `tool_crashed`.
 *
 * The tool waits on an HTTP gate this test holds, so "in flight" is a fact, not a guess at timing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDev } from "./support/dev_server.ts";
import { until } from "../support/until.ts";

interface State {
  status: string;
  output?: unknown;
  error?: unknown;
}

/** An HTTP server whose requests are answered only when the test says so. */
function startGate() {
  const waiting: Array<(body: string) => void> = [];
  let arrived = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    arrived++;
    return new Promise<Response>((resolve) => waiting.push((body) => resolve(new Response(body))));
  });
  return {
    port: server.addr.port,
    arrived: () => arrived,
    releaseAll(body: string) {
      for (const release of waiting.splice(0)) release(body);
    },
    stop: () => server.shutdown(),
  };
}

const toolCode = (port: number, version: number) =>
  `export default async () => {
  const res = await fetch("http://127.0.0.1:${port}/");
  return { version: ${version}, gate: await res.text() };
};
`;

async function writeProject(dir: string, port: number): Promise<void> {
  await Deno.mkdir(join(dir, "workflows/tools"), { recursive: true });
  await Deno.mkdir(join(dir, ".git"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "compozy.yaml"),
    "name: watch\nversion: 0.1.0\nworkflows:\n  - source: ./workflows/held.yaml\n",
  );
  await Deno.writeTextFile(
    join(dir, "workflows/held.yaml"),
    `id: held
tools:
  - id: gate
    execute: ./tools/gate.ts
    timeout: 5m
    permissions: { net: ["127.0.0.1:${port}"] }
tasks:
  - id: call
    use: tool(id=gate)
    final: true
`,
  );
  await Deno.writeTextFile(join(dir, "workflows/tools/gate.ts"), toolCode(port, 1));
}

Deno.test({
  name: "dev --watch: a save reloads only for project files; calls in flight finish on the old code",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const gate = startGate();
    const dir = await Deno.makeTempDir({ prefix: "compozy-watch-" });
    await writeProject(dir, gate.port);
    const dev = await startDev({ dir, args: ["--watch"] });
    const start = async () =>
      (await (await dev.fetch("/api/workflows/held/executions", {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json" },
      })).json()).exec_id as string;
    const state = async (id: string): Promise<State> =>
      await (await dev.fetch(`/api/executions/${id}`)).json();
    try {
      await dev.waitForLine(/^watching /);
      const first = await start();
      await until(() => Promise.resolve(gate.arrived() === 1));

      // Not the project's code or configuration: no reload, the runtime untouched.
      await Deno.writeTextFile(join(dir, "notes.txt"), "note\n");
      await Deno.writeTextFile(join(dir, "README.md"), "# watch\n");
      await Deno.writeTextFile(join(dir, ".git/HEAD"), "ref: refs/heads/main\n");
      // The running tool's own module changes: the runtime restarts.
      await Deno.writeTextFile(join(dir, "workflows/tools/gate.ts"), toolCode(gate.port, 2));
      await dev.waitForLine(/^reloaded \(/);
      const reloads = dev.lines.map((l) => /^(?:not )?reloaded \((.*?)\)/.exec(l)?.[1]).filter(Boolean);
      assert.deepEqual(reloads, ["workflows/tools/gate.ts"]);

      // A call started after the reload runs the new code, while the first one still waits at the gate.
      const second = await start();
      await until(() => Promise.resolve(gate.arrived() === 2));
      assert.equal((await state(first)).status, "RUNNING");
      gate.releaseAll("open");
      await until(async () => !["RUNNING", "PENDING"].includes((await state(first)).status));
      await until(async () => !["RUNNING", "PENDING"].includes((await state(second)).status));
      const [a, b] = [await state(first), await state(second)];
      assert.deepEqual([a.status, a.output ?? a.error], ["SUCCESS", { version: 1, gate: "open" }]);
      assert.deepEqual([b.status, b.output ?? b.error], ["SUCCESS", { version: 2, gate: "open" }]);
      // Each call ran once: the drained one was not sent again to the new runtime.
      assert.equal(gate.arrived(), 2);
    } finally {
      gate.releaseAll("closed");
      await dev.stop();
      await gate.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
