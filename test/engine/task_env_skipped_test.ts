/**
 * A task's `env` is rendered for its templates (b49f8e0), but a task whose `if` renders false does not run: an
 * env that reads what only exists when it runs (the output of a task its same guard skipped) must not fail it.
 * Real nats-server, real engine.
 */
import assert from "node:assert/strict";
import { run, withEngine } from "../support/flows.ts";

const WORKFLOW = `tasks:
  - id: maybe
    if: "{{ .workflow.input.go }}"
    use: tool(id=echo)
    with: { v: { token: abc } }
  - id: after
    if: "{{ .workflow.input.go }}"
    env: { TOKEN: "{{ .tasks.maybe.output.v.token }}" }
    use: tool(id=echo)
    with: { t: "{{ .env.TOKEN }}" }
`;

Deno.test("a task skipped by its if does not fail on an env that reads what its guard skipped", async () => {
  await withEngine(WORKFLOW, async (h) => {
    const ran = await run(h, { go: true });
    assert.equal(ran.status, "SUCCESS", JSON.stringify(ran.error));
    assert.deepEqual(ran.tasks.find((t) => t.task_id === "after")?.output, { t: "abc" });
    const skipped = await run(h, { go: false });
    assert.equal(skipped.status, "SUCCESS", JSON.stringify(skipped.error));
    assert.equal(skipped.tasks.find((t) => t.task_id === "after")?.status, "SKIPPED");
  });
});
