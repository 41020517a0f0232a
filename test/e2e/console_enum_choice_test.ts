/**
 * The start form sends the enum value picked, with its type: `enum: [1, 2, 3]` without a `type` sent "2" and
 * the server answered 422 "must be equal to one of the allowed values" for a value picked from the form's own
 * list; `enum: [true, false, null]` likewise (outside review rev35).
 */
import assert from "node:assert/strict";
import { launchBrowserBeside, recordedPage } from "./support/browser.ts";
import { startDevOn } from "./support/dev_server.ts";

const PROJECT = {
  "compozy.yaml": "name: choices\nworkflows:\n  - source: ./choose.yaml\n",
  "choose.yaml": [
    "id: choose",
    "config:",
    "  input:",
    "    type: object",
    "    properties:",
    "      level: { enum: [1, 2, 3] }",
    "      mode: { type: string, enum: [fast, slow] }",
    "      strict: { enum: [true, false, null] }",
    "      size: { type: integer, enum: [10, 20], default: 20 }",
    "    required: [level]",
    "tasks:",
    "  - id: nap",
    "    type: sleep",
    "    duration: 1h",
    "",
  ].join("\n"),
};

Deno.test({
  name: "the start form sends the enum value picked, a number, a boolean or null as such",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const [dev, browser] = await launchBrowserBeside(startDevOn(PROJECT), (d) => d.close());
    try {
      const { page, errors } = await recordedPage(browser);
      await page.goto(`${dev.url}/#/workflows/choose`);
      await page.waitForSelector("#field-level");
      await page.select("#field-level", "2");
      await page.select("#field-mode", "slow");
      await page.select("#field-strict", "false");
      await page.click("#start-form button[type=submit]");
      await page.waitForFunction(() => location.hash.startsWith("#/executions/"), { timeout: 20_000 })
        .catch(async (e) => {
          const shown = await page.$eval("#main", (m) => (m as unknown as { innerText: string }).innerText);
          throw new Error(`the start did not go through; the page shows: ${shown}`, { cause: e });
        });
      const execId = page.url().split("#/executions/")[1];
      const state = await (await dev.fetch(`/api/executions/${execId}`)).json();
      assert.deepEqual(state.input, { level: 2, mode: "slow", strict: false, size: 20 });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await dev.close();
    }
  },
});
