/**
 * An open execution page outlives a restart of the API: while `compozy dev` is down the page keeps the
 * execution it showed and says it reconnects; once the server is back (same port, same project) it follows the
 * execution again and shows how it ended, with no reload (outside review brk-ui, defect 1).
 */
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { launchBrowser, recordedPage, waitForText } from "./support/browser.ts";
import { CONSOLE_FIXTURE as FIXTURE, startApproval } from "./support/console_approval.ts";
import { type DevServer, startDev } from "./support/dev_server.ts";

const json = { "content-type": "application/json" };

/** What a test sees around the restart: the execution waiting for approval, the page, and the server. */
interface AroundRestart {
  exec_id: string;
  /** The console's address, the same after the restart. */
  url: string;
  page: Page;
  /** Stops `compozy dev`. */
  stop(): Promise<void>;
  /** Starts it again on the same project and port. */
  start(): Promise<DevServer>;
}

/**
 * Starts `compozy dev` on the approval fixture, an execution waiting for its signal and a browser page, runs
 * `test`, and cleans up whatever is left running. At the end the page no longer says it reconnects, and the
 * marker `test` set on its window (markPage) is still there: the page was never reloaded.
 */
async function aroundRestart(item: string, test: (around: AroundRestart) => Promise<void>): Promise<void> {
  let dev: DevServer | undefined = await startDev({ fixture: FIXTURE });
  const dir = dev.dir;
  const port = new URL(dev.url).port;
  const browser = await launchBrowser();
  try {
    const exec_id = await startApproval(dev, { item });
    await dev.waitForLine(/waiting for signal 'approve'/);
    const { page } = await recordedPage(browser);
    await test({
      exec_id,
      url: dev.url,
      page,
      stop: async () => {
        await dev?.stop();
        dev = undefined;
      },
      start: async () => {
        dev = await startDev({ dir, args: ["--port", port] });
        assert.equal(new URL(dev.url).port, port);
        return dev;
      },
    });
    assert.equal(await page.$("#exec-connection"), null, "the reconnecting note stayed");
    assert.equal(await page.evaluate(() => (globalThis as unknown as { marker: number }).marker), 1);
  } finally {
    await browser.close();
    await dev?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

const markPage = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { marker: number }).marker = 1);

Deno.test("an open execution page reconnects after the API restarts", async () => {
  await aroundRestart("chair", async ({ exec_id, url, page, stop, start }) => {
    await page.goto(`${url}/#/executions/${exec_id}`);
    await waitForText(page, ".status", "WAITING");
    await waitForText(page, ".why-wait", "approve");
    await markPage(page);

    await stop();
    await waitForText(page, "#exec-connection", "Reconnecting to the server");
    // What the page showed is still there, not replaced by an error.
    assert.equal(await page.$eval("#exec-id", (e) => e.textContent), exec_id);
    assert.equal(await page.$(".error-box"), null, "the page was replaced by an error");

    const dev = await start();
    const signaled = await dev.fetch(`/api/executions/${exec_id}/signals/approve`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ ok: true, by: "ops" }),
    });
    assert.equal(signaled.status, 202);
    await signaled.body?.cancel();

    await waitForText(page, ".exec-head .status", "SUCCESS", 30_000);
    await waitForText(page, "#exec-output", "CHAIR APPROVED BY OPS");
  });
});

Deno.test("an execution page first opened while the API is down loads once it is back", async () => {
  await aroundRestart("lamp", async ({ exec_id, url, page, stop, start }) => {
    await page.goto(`${url}/#/executions`);
    await waitForText(page, "main", exec_id);
    await markPage(page);

    await stop();
    // The page is already loaded; following a link to the execution makes its first read with no server.
    await page.evaluate((id) => location.hash = `#/executions/${id}`, exec_id);
    await waitForText(page, "#exec-connection", "Reconnecting to the server");
    assert.equal(await page.$(".error-box"), null, "the first failed read showed an error that stays");

    await start();
    await waitForText(page, ".exec-head .status", "WAITING", 30_000);
    assert.equal(await page.$eval("#exec-id", (e) => e.textContent), exec_id);
  });
});
