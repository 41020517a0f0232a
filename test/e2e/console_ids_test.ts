/**
 * Ids that cannot exist are not put into a URL path: a deep link `#/executions/..` asked for `/api/` (the
 * browser resolves `..`) and a signal id `..` posted to `/api/executions/{id}/` (outside review brk-ui, defect
 * 3). The console says the id is not valid and requests nothing with it.
 */
import assert from "node:assert/strict";
import { fill, launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { CONSOLE_FIXTURE as FIXTURE, startApproval } from "./support/console_approval.ts";
import { startDev } from "./support/dev_server.ts";

Deno.test("ids that are not valid are refused before any request", async () => {
  const [dev, browser] = await launchBrowserBeside(startDev({ fixture: FIXTURE }), (d) => d.stop());
  try {
    const exec_id = await startApproval(dev, { item: "chair" });
    const { page, requests } = await recordedPage(browser);

    await page.goto(`${dev.url}/#/executions/..`);
    await waitForText(page, "#invalid-id", "is not a valid execution id");
    await page.goto(`${dev.url}/#/workflows/..`);
    await waitForText(page, "#invalid-id", "is not a valid workflow id");

    await page.goto(`${dev.url}/#/executions/${exec_id}`);
    await waitForText(page, ".exec-head .status", "WAITING");
    await page.click("#act-signal");
    await fill(page, "#signal-form input[name=signal_id]", "..");
    await waitForText(page, "#signal-id-error", "is not a valid signal id");
    assert.equal(
      await page.$eval("#signal-form button[type=submit]", (b) => b.hasAttribute("disabled")),
      true,
    );
    // A submit by other means than the button sends nothing either: the submit handler checks the id too.
    await page.$eval("#signal-form", (f) => (f as unknown as { requestSubmit(): void }).requestSubmit());
    await new Promise((r) => setTimeout(r, 500));

    const wrong = requests.filter((url) => {
      const path = new URL(url).pathname;
      return path === "/api/" || path === `/api/executions/${exec_id}/` ||
        path.startsWith("/api/workflows/..");
    });
    assert.deepEqual(wrong, [], "requests made with an invalid id");
  } finally {
    await browser.close();
    await dev.stop();
  }
});

Deno.test("a link whose id is not valid percent-encoding says the id is not valid", async () => {
  // `#/executions/%` left the page blank (URIError in decodeURIComponent while routing, nothing rendered),
  // and followed from another page left that page showing under the new URL (outside review rev35).
  const [dev, browser] = await launchBrowserBeside(startDev({ fixture: FIXTURE }), (d) => d.stop());
  try {
    const { page, errors } = await recordedPage(browser);
    await page.goto(`${dev.url}/#/executions/%`);
    await waitForText(page, "#invalid-id", "% is not a valid execution id");
    await page.goto(`${dev.url}/#/executions`);
    await page.waitForSelector("#executions");
    await page.evaluate(() => location.hash = "#/workflows/%E0%A4%A");
    await waitForText(page, "#invalid-id", "%E0%A4%A is not a valid workflow id");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await dev.stop();
  }
});
