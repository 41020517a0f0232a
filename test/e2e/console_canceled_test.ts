/**
 * An execution that was canceled is not shown as failed: the console (in the system Chromium) heads its error
 * box by what ended it.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { startDev } from "./support/dev_server.ts";

const FIXTURE = resolve(import.meta.dirname!, "fixtures/console");

Deno.test("a canceled execution's page says it was canceled, not that it failed", async () => {
  const [dev, browser] = await launchBrowserBeside(startDev({ fixture: FIXTURE }), (d) => d.stop());
  try {
    const json = { "content-type": "application/json" };
    const started = await dev.fetch("/api/workflows/slow/executions", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ input: {} }),
    });
    assert.equal(started.status, 202);
    const { exec_id } = await started.json();
    const canceled = await dev.fetch(`/api/executions/${exec_id}/cancel`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ reason: "no longer needed" }),
    });
    assert.equal(canceled.status, 202);
    await canceled.body?.cancel();
    const { page } = await recordedPage(browser);
    await page.goto(`${dev.url}/#/executions/${exec_id}`);
    await waitForText(page, ".status", "CANCELED");
    await waitForText(page, ".error-box strong", "The execution was canceled");
  } finally {
    await browser.close();
    await dev.stop();
  }
});
