/**
 * A call or sub-workflow start larger than the server's max_payload (8 MiB here) fails `input_too_large`, not
 * retried, naming what was too large, its size and the limit (outside review D2: it failed as a retryable
 * `runtime_unavailable` "runtime did not answer", or `internal_error` for a sub-workflow, and each retry sent
 * it again for nothing). Real engine, real nats-server.
 */
import assert from "node:assert/strict";
import { run, withEngine } from "../support/flows.ts";

const big = { s: "x".repeat(3 * 1024 * 1024) };
const HANDLER = `  - { id: ok, type: aggregate, outputs: { never: true }, final: true }
  - { id: h, type: aggregate, outputs: { m: "{{ .error.message }}", code: "{{ .error.code }}" } }
`;

interface Handled {
  m: string;
  code: string;
}

/**
 * Runs the task `id` (YAML of its `use` and `with`, given retry and on_error here) on a 9 MiB input and checks
 * it failed input_too_large once, with a message matching `message`.
 */
async function expectTooLarge(id: string, task: string, message: RegExp, calls?: string[]): Promise<void> {
  await withEngine(
    `tasks:
  - id: ${id}
${task}    retry: { max_attempts: 3 }
    on_error: { next: h }
${HANDLER}`,
    async (h, toolCalls) => {
      const state = await run(h, big, 60_000);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      const out = state.output as Handled;
      assert.equal(out.code, "input_too_large", out.m);
      assert.match(out.m, message);
      assert.equal(state.tasks.find((t) => t.task_id === id)?.attempts, 1, "not retried");
      if (calls) assert.deepEqual(toolCalls, calls, "no runtime got it");
    },
  );
}

Deno.test("an input too large for one bus message", async (t) => {
  await t.step("a tool call of 9 MiB fails input_too_large once, though the task has retry", async () => {
    await expectTooLarge(
      "big",
      `    use: tool(id=echo)
    with: { a: "{{ .workflow.input.s }}", b: "{{ .workflow.input.s }}", c: "{{ .workflow.input.s }}" }
`,
      /^the call to tool 'echo' \(its input, env and definition\) is \d+ bytes encoded, over the bus limit of \d+ bytes/,
      [],
    );
  });

  await t.step("a sub-workflow start of 9 MiB fails input_too_large, naming the sub-workflow", async () => {
    await expectTooLarge(
      "sub",
      `    use: workflow(id=child)
    with: { v: "{{ .workflow.input.s }}", w: "{{ .workflow.input.s }}", x: "{{ .workflow.input.s }}" }
`,
      /^the start of sub-workflow 'child' \(its input\) is \d+ bytes encoded/,
    );
  });
});
