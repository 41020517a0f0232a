/** An action's note ("Resume requested.") is cleared when another action's form opens (brk-ui defect 6). */
import assert from "node:assert/strict";
import { launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { CONSOLE_FIXTURE as FIXTURE, startApproval } from "./support/console_approval.ts";
import { startDev } from "./support/dev_server.ts";

Deno.test("opening Cancel… clears the note of the Resume before it", async () => {
  const [dev, browser] = await launchBrowserBeside(startDev({ fixture: FIXTURE }), (d) => d.stop());
  try {
    const exec_id = await startApproval(dev, { item: "chair" });
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
