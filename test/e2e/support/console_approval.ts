/** The console tests' execution to look at: the console fixture's `approval` workflow, started over the API. */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import type { DevServer } from "./dev_server.ts";

export const CONSOLE_FIXTURE = resolve(import.meta.dirname!, "../fixtures/console");

/** Starts `approval` with this input and answers its execution id (it then waits for the signal `approve`). */
export async function startApproval(dev: DevServer, input: Record<string, unknown>): Promise<string> {
  const started = await dev.fetch("/api/workflows/approval/executions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input }),
  });
  assert.equal(started.status, 202, await started.clone().text());
  const { exec_id } = await started.json();
  return exec_id;
}
