/**
 * An older page of the executions list is in the page's address: Back from an execution opened on it returns
 * to it, and a link to it shows it. The list kept its page in memory only, so Back (or a reload, or a shared
 * link) showed the newest page again (outside review rev35).
 */
import assert from "node:assert/strict";
import { launchBrowserBeside, recordedPage } from "./support/browser.ts";
import { CONSOLE_FIXTURE, startApproval } from "./support/console_approval.ts";
import { startDev } from "./support/dev_server.ts";

Deno.test({
  name: "Back from an execution opened on an older page of the list returns to that page",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const [dev, browser] = await launchBrowserBeside(startDev({ fixture: CONSOLE_FIXTURE }), (d) => d.stop());
    try {
      for (const item of ["a", "b", "c", "d"]) await startApproval(dev, { item });
      const all = await (await dev.fetch("/api/executions?limit=4")).json();
      const ids: string[] = all.items.map((e: { exec_id: string }) => e.exec_id);
      const { page } = await recordedPage(browser);
      const rows = () => page.$$eval("tr[data-exec]", (els) => els.map((e) => e.getAttribute("data-exec")));
      await page.goto(`${dev.url}/#/executions?limit=1`);
      await page.waitForSelector(`tr[data-exec="${ids[0]}"]`);
      await page.click("#older");
      await page.waitForSelector(`tr[data-exec="${ids[1]}"]`);
      await page.click("#older");
      await page.waitForSelector(`tr[data-exec="${ids[2]}"]`);
      const olderPage = page.url();

      await page.click(`tr[data-exec="${ids[2]}"] a`);
      await page.waitForSelector("h1 .status");
      await page.goBack();
      await page.waitForSelector(`tr[data-exec="${ids[2]}"]`);
      assert.deepEqual(await rows(), [ids[2]]);

      await page.click("#newer");
      await page.waitForSelector(`tr[data-exec="${ids[1]}"]`);
      assert.deepEqual(await rows(), [ids[1]]);

      // The older page's address shows that page on its own (a reload, a link).
      const other = await browser.newPage();
      await other.goto(olderPage);
      await other.waitForSelector(`tr[data-exec="${ids[2]}"]`);
      await other.close();
    } finally {
      await browser.close();
      await dev.stop();
    }
  },
});
