/** An action's note ("Resume requested.") is cleared when another action's form opens (brk-ui defect 6). */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { launchBrowser, recordedPage, waitForText } from "./support/browser.ts";
import { startDev } from "./support/dev_server.ts";

const FIXTURE = resolve(import.meta.dirname!, "fixtures/console");

Deno.test("opening Cancel… clears the note of the Resume before it", async () => {
  const dev = await startDev({ fixture: FIXTURE });
  const browser = await launchBrowser();
  try {
    const started = await dev.fetch("/api/workflows/approval/executions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: { item: "chair" } }),
    });
    const { exec_id } = await started.json();
    const { page } = await recordedPage(browser);
    await page.goto(`${dev.url}/#/executions/${exec_id}`);
    await waitForText(page, ".exec-head .status", "WAITING");
    await page.click("#act-pause");
    await waitForText(page, ".exec-head .status", "PAUSED");
    await page.click("#act-resume");
    await waitForText(page, ".actions .note", "Resume requested.");
    await page.click("#act-cancel");
    await page.waitForSelector("#cancel-form");
    assert.equal(
      await page.$(".actions .note"),
      null,
      "the Resume note is still shown above the cancel form",
    );
  } finally {
    await browser.close();
    await dev.stop();
  }
});
