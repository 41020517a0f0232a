/**
 * An agent task's tool calls show what the model asked for (each call's input), in the order it asked: the
 * panel showed each call's output only, folded, in the order the calls ended, so 300 calls of one tool in a
 * turn read as 300 identical "turn 1 sq" lines (outside review rev35). The inputs are in the recorded
 * `agent.tool_call_ended` events. A mock model (offline) asks for two calls in one turn.
 */
import assert from "node:assert/strict";
import { launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { startDevOn } from "./support/dev_server.ts";

const PROJECT = {
  "compozy.yaml": [
    "name: calls",
    "workflows:",
    "  - source: ./w.yaml",
    "models:",
    "  - id: offline",
    "    provider: mock",
    "    model: scripted",
    "    mock:",
    "      replies:",
    "        square:",
    "          - tool_calls:",
    "              - { tool: slow_square, input: { n: 3 } }",
    "              - { tool: slow_square, input: { n: 4 } }",
    "          - text: done",
    "",
  ].join("\n"),
  "w.yaml": [
    "id: w",
    "tools:",
    "  - { id: slow_square, execute: ./slow_square.ts }",
    "agents:",
    "  - id: squarer",
    "    config: { $model: offline }",
    "    instructions: You square.",
    "    tools: [slow_square]",
    "    actions:",
    "      - { id: square, prompt: Square }",
    "tasks:",
    "  - id: ask",
    "    use: agent(id=squarer)",
    "    action: square",
    "",
  ].join("\n"),
  // The first call ends last, so the order the calls ended is not the order they were asked in.
  "slow_square.ts": [
    "export default async ({ n }: { n: number }) => {",
    "  if (n === 3) await new Promise((r) => setTimeout(r, 500));",
    "  return { sq: n * n };",
    "};",
    "",
  ].join("\n"),
};

Deno.test({
  name: "an agent task's tool calls show each call's input, in the order the model asked",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const [dev, browser] = await launchBrowserBeside(startDevOn(PROJECT), (d) => d.close());
    try {
      const state = await dev.run("w");
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      const { page } = await recordedPage(browser);
      await page.goto(`${dev.url}/#/executions/${state.exec_id}`);
      // The timeline renders after the page's first fetch of the execution: wait for the row, then click it.
      await page.waitForSelector('.tl-row[data-task="ask"]');
      await page.click('.tl-row[data-task="ask"]');
      await waitForText(page, "#tool-calls", "Tool calls (2)");
      const calls = await page.$$eval(
        "#tool-calls li",
        (items) => items.map((li) => (li as unknown as { innerText: string }).innerText.replace(/\s+/g, " ")),
      );
      assert.equal(calls.length, 2);
      assert.match(calls[0], /turn 1 · call 1 slow_square.*input.*"n": 3/);
      assert.match(calls[1], /turn 1 · call 2 slow_square.*input.*"n": 4/);
    } finally {
      await browser.close();
      await dev.close();
    }
  },
});
