/**
 * A double click on an action's button sends its request once: "Start the re-run" started two executions and
 * "Send" sent the signal twice (a second wait on the same signal id took the copy), while the start form
 * already refused a second submit (outside review rev35). The page's POSTs are held until both clicks are in,
 * so the second click lands while the first request is in flight, as on a slow network.
 */
import assert from "node:assert/strict";
import type { HTTPRequest, Page } from "puppeteer-core";
import { fill, launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { CONSOLE_FIXTURE, startApproval } from "./support/console_approval.ts";
import { startDev } from "./support/dev_server.ts";

/** Double-clicks `selector` with the page's POST requests held; answers what was sent, then lets them go. */
async function doubleClickHoldingPosts(page: Page, selector: string): Promise<string[]> {
  const held: HTTPRequest[] = [];
  const onRequest = (request: HTTPRequest) => {
    if (request.method() === "POST") held.push(request);
    else void request.continue();
  };
  await page.setRequestInterception(true);
  page.on("request", onRequest);
  try {
    await page.click(selector, { count: 2 });
    // The first POST was sent by the first click; the second click has been handled by now.
    await page.waitForFunction(() => true);
    return held.map((request) => new URL(request.url()).pathname);
  } finally {
    page.off("request", onRequest);
    await page.setRequestInterception(false);
    for (const request of held) await request.continue();
  }
}

Deno.test({
  name: "a double click on Send or Start the re-run sends one request",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const [dev, browser] = await launchBrowserBeside(startDev({ fixture: CONSOLE_FIXTURE }), (d) => d.stop());
    try {
      const execId = await startApproval(dev, { item: "chair" });
      const { page } = await recordedPage(browser);
      await page.goto(`${dev.url}/#/executions/${execId}`);
      await waitForText(page, "h1 .status", "WAITING");

      await t.step("Send", async () => {
        await page.click("#act-signal");
        await fill(page, "#signal-form textarea", '{"ok": false}');
        const sent = await doubleClickHoldingPosts(page, "#signal-form button[type=submit]");
        assert.deepEqual(sent, [`/api/executions/${execId}/signals/approve`]);
        await waitForText(page, ".actions .note", "Signal 'approve' sent.");
      });

      await t.step("Start the re-run", async () => {
        await page.click("#act-rerun");
        const sent = await doubleClickHoldingPosts(page, "#rerun-form button[type=submit]");
        assert.deepEqual(sent, [`/api/executions/${execId}/rerun`]);
        await page.waitForFunction((first) => !location.hash.endsWith(first as string), {}, execId);
        const listed = await (await dev.fetch("/api/executions?workflow_id=approval")).json();
        const reruns = listed.items.filter((e: { rerun_of: string | null }) => e.rerun_of === execId);
        assert.equal(reruns.length, 1, JSON.stringify(reruns));
      });
    } finally {
      await browser.close();
      await dev.stop();
    }
  },
});
