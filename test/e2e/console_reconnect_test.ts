/**
 * An open execution page outlives a restart of the API: while `compozy dev` is down the page keeps the
 * execution it showed and says it reconnects; once the server is back (same port, same project) it follows the
 * execution again and shows how it ended, with no reload (outside review brk-ui, defect 1).
 */
import assert from "node:assert/strict";
import { launchBrowser, recordedPage, waitForText } from "./support/browser.ts";
import { CONSOLE_FIXTURE as FIXTURE, startApproval } from "./support/console_approval.ts";
import { type DevServer, startDev } from "./support/dev_server.ts";

const json = { "content-type": "application/json" };

Deno.test("an open execution page reconnects after the API restarts", async () => {
  let dev: DevServer | undefined = await startDev({ fixture: FIXTURE });
  const dir = dev.dir;
  const port = new URL(dev.url).port;
  const browser = await launchBrowser();
  try {
    const exec_id = await startApproval(dev, { item: "chair" });
    await dev.waitForLine(/waiting for signal 'approve'/);
    const { page } = await recordedPage(browser);
    await page.goto(`${dev.url}/#/executions/${exec_id}`);
    await waitForText(page, ".status", "WAITING");
    await waitForText(page, ".why-wait", "approve");
    // A marker on window: it is still there at the end only if the page was never reloaded.
    await page.evaluate(() => (globalThis as unknown as { marker: number }).marker = 1);

    await dev.stop();
    dev = undefined;
    await waitForText(page, "#exec-connection", "Reconnecting to the server");
    // What the page showed is still there, not replaced by an error.
    assert.equal(await page.$eval("#exec-id", (e) => e.textContent), exec_id);
    assert.equal(await page.$(".error-box"), null, "the page was replaced by an error");

    dev = await startDev({ dir, args: ["--port", port] });
    assert.equal(new URL(dev.url).port, port);
    const signaled = await dev.fetch(`/api/executions/${exec_id}/signals/approve`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ ok: true, by: "ops" }),
    });
    assert.equal(signaled.status, 202);
    await signaled.body?.cancel();

    await waitForText(page, ".exec-head .status", "SUCCESS", 30_000);
    await waitForText(page, "#exec-output", "CHAIR APPROVED BY OPS");
    assert.equal(await page.$("#exec-connection"), null, "the reconnecting note stayed");
    assert.equal(await page.evaluate(() => (globalThis as unknown as { marker: number }).marker), 1);
  } finally {
    await browser.close();
    await dev?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an execution page first opened while the API is down loads once it is back", async () => {
  let dev: DevServer | undefined = await startDev({ fixture: FIXTURE });
  const dir = dev.dir;
  const port = new URL(dev.url).port;
  const browser = await launchBrowser();
  try {
    const exec_id = await startApproval(dev, { item: "lamp" });
    await dev.waitForLine(/waiting for signal 'approve'/);
    const { page } = await recordedPage(browser);
    await page.goto(`${dev.url}/#/executions`);
    await waitForText(page, "main", exec_id);
    await page.evaluate(() => (globalThis as unknown as { marker: number }).marker = 1);

    await dev.stop();
    dev = undefined;
    // The page is already loaded; following a link to the execution makes its first read with no server.
    await page.evaluate((id) => location.hash = `#/executions/${id}`, exec_id);
    await waitForText(page, "#exec-connection", "Reconnecting to the server");
    assert.equal(await page.$(".error-box"), null, "the first failed read showed an error that stays");

    dev = await startDev({ dir, args: ["--port", port] });
    await waitForText(page, ".exec-head .status", "WAITING", 30_000);
    assert.equal(await page.$eval("#exec-id", (e) => e.textContent), exec_id);
    assert.equal(await page.$("#exec-connection"), null, "the reconnecting note stayed");
    assert.equal(await page.evaluate(() => (globalThis as unknown as { marker: number }).marker), 1);
  } finally {
    await browser.close();
    await dev?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
