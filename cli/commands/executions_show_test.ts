/**
 * `compozy executions show` prints stored data it cannot turn into a date as it is, rather than crashing:
 * a wait's deadline past the largest JavaScript date (year 275760) was stored by versions that accepted
 * `timeout: 100000000d` (outside review B13), and `show` exited 2 with "Invalid time value".
 * The server here is real HTTP answering with that stored data; no engine can record it any more.
 */
import assert from "node:assert/strict";
import { runExecutionsShow } from "./executions.ts";

const EXEC = "0190f0c0-0000-7000-8000-000000000001";
const DEADLINE = 8641796297503325; // 100000000d after 2026-12-03: past 8.64e15, the last valid date

function storedData(path: string): unknown {
  if (path === `/api/executions/${EXEC}`) {
    return {
      exec_id: EXEC,
      workflow_id: "v2",
      status: "RUNNING",
      started_at: "2026-12-03T10:00:00.000Z",
      ended_at: null,
      input: {},
      output: null,
      error: null,
      tasks: [{
        task_id: "w",
        exec_id: `${EXEC}.w`,
        status: "WAITING",
        waiting_for: "go",
        attempts: 1,
        started_at: "not a date",
        ended_at: null,
      }],
    };
  }
  if (path === "/api/workflows/v2") return { tasks: [{ id: "w", type: "wait", signal: "go" }] };
  if (path === `/api/executions/${EXEC}/events`) {
    return {
      events: [{
        seq: 3,
        type: "task.waiting_started",
        data: { task: { execId: `${EXEC}.w` }, deadlineUnixMs: String(DEADLINE) },
      }],
    };
  }
  return undefined;
}

Deno.test("executions show prints a deadline past year 275760 raw instead of crashing", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const body = storedData(new URL(req.url).pathname);
    return body === undefined ? new Response("{}", { status: 404 }) : Response.json(body);
  });
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    const code = await runExecutionsShow(EXEC, {
      server: `http://127.0.0.1:${server.addr.port}`,
      json: false,
    });
    assert.equal(code, 0);
  } finally {
    console.log = log;
    await server.shutdown();
  }
  const text = lines.join("\n");
  assert.ok(
    text.includes(`waiting w: signal 'go', times out at ${DEADLINE} (ms since 1970, not a valid date)\n`),
    text,
  );
  // The task's unreadable start leaves its length unknown, not "NaN".
  assert.match(text, /^w +WAITING +1 +\?$/m);
  assert.ok(!text.includes("NaN"), text);
});

Deno.test("executions show says which detail of a wait it could not read, instead of leaving it out silently", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path.endsWith("/events")) {
      return Response.json({ error: { code: "history_unavailable", message: "history read timed out" } }, {
        status: 503,
      });
    }
    const body = storedData(path);
    return body === undefined ? new Response("{}", { status: 404 }) : Response.json(body);
  });
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    assert.equal(
      await runExecutionsShow(EXEC, { server: `http://127.0.0.1:${server.addr.port}`, json: false }),
      0,
    );
  } finally {
    console.log = log;
    await server.shutdown();
  }
  const text = lines.join("\n");
  // Without the history its deadline is unknown, not absent.
  assert.match(text, /waiting w: signal 'go'\n/);
  assert.match(
    text,
    /not shown: could not read the execution's history \(deadlines\): .*history read timed out/,
  );
});
