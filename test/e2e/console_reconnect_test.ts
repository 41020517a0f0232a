/**
 * An open execution page outlives a restart of the API: while `compozy dev` is down the page keeps the
 * execution it showed and says it reconnects; once the server is back (same port, same project) it follows the
 * execution again and shows how it ended, with no reload (outside review brk-ui, defect 1). A page that first
 * opens an execution while the API is down loads it once the server is back. One restart serves both pages.
 */
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { CONSOLE_FIXTURE as FIXTURE, startApproval } from "./support/console_approval.ts";
import { type DevServer, startDev } from "./support/dev_server.ts";

const json = { "content-type": "application/json" };

/** A marker on the page's window: it is still there at the end only if the page was never reloaded. */
const markPage = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { marker: number }).marker = 1);

async function assertNotReloaded(page: Page): Promise<void> {
  assert.equal(await page.$("#exec-connection"), null, "the reconnecting note stayed");
  assert.equal(await page.evaluate(() => (globalThis as unknown as { marker: number }).marker), 1);
}

Deno.test("execution pages reconnect after the API restarts, and one first opened meanwhile loads", async () => {
  const [first, browser] = await launchBrowserBeside(startDev({ fixture: FIXTURE }), (d) => d.stop());
  let dev: DevServer | undefined = first;
  const dir = dev.dir;
  const url = dev.url;
  const port = new URL(url).port;
  try {
    const chair = await startApproval(dev, { item: "chair" });
    const lamp = await startApproval(dev, { item: "lamp" });
    await dev.waitForLine(/waiting for signal 'approve'/);
    // Open: the chair's page. Opened later: the list, from which the lamp's page is followed with no server.
    const { page: open } = await recordedPage(browser);
    await open.goto(`${url}/#/executions/${chair}`);
    await waitForText(open, ".status", "WAITING");
    await waitForText(open, ".why-wait", "approve");
    await markPage(open);
    const { page: later } = await recordedPage(browser);
    await later.goto(`${url}/#/executions`);
    await waitForText(later, "main", lamp);
    await markPage(later);

    await dev.stop();
    dev = undefined;
    // Only the tab in front renders, and waitForText polls on its frames: each page is brought to the front
    // before it is watched.
    await open.bringToFront();
    await waitForText(open, "#exec-connection", "Reconnecting to the server");
    // What the page showed is still there, not replaced by an error.
    assert.equal(await open.$eval("#exec-id", (e) => e.textContent), chair);
    assert.equal(await open.$(".error-box"), null, "the page was replaced by an error");
    await later.bringToFront();
    // The list is already loaded; following a link to the execution makes its first read with no server.
    await later.evaluate((id) => location.hash = `#/executions/${id}`, lamp);
    await waitForText(later, "#exec-connection", "Reconnecting to the server");
    assert.equal(await later.$(".error-box"), null, "the first failed read showed an error that stays");

    dev = await startDev({ dir, args: ["--port", port] });
    assert.equal(new URL(dev.url).port, port);
    await waitForText(later, ".exec-head .status", "WAITING", 30_000);
    assert.equal(await later.$eval("#exec-id", (e) => e.textContent), lamp);
    const signaled = await dev.fetch(`/api/executions/${chair}/signals/approve`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ ok: true, by: "ops" }),
    });
    assert.equal(signaled.status, 202);
    await signaled.body?.cancel();
    await open.bringToFront();
    await waitForText(open, ".exec-head .status", "SUCCESS", 30_000);
    await waitForText(open, "#exec-output", "CHAIR APPROVED BY OPS");
    await assertNotReloaded(open);
    await assertNotReloaded(later);
  } finally {
    await browser.close();
    await dev?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
