/**
 * An execution with a large input or output (a collection of 2,000 items) shows its long lists folded: each
 * item drawn one per line put the timeline 8,000 lines below the header, behind 28,000 DOM nodes (outside
 * review rev35). A list or object of more than 100 entries starts folded, saying its size; a click opens it.
 */
import assert from "node:assert/strict";
import { launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { CONSOLE_FIXTURE, startApproval } from "./support/console_approval.ts";
import { startDev } from "./support/dev_server.ts";

Deno.test({
  name: "a list of more than 100 items starts folded, and opens on a click",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const [dev, browser] = await launchBrowserBeside(startDev({ fixture: CONSOLE_FIXTURE }), (d) => d.stop());
    try {
      const many = Array.from({ length: 300 }, (_, i) => ({ n: i }));
      const few = Array.from({ length: 100 }, (_, i) => i);
      const execId = await startApproval(dev, { item: "chair", many, few });
      const { page } = await recordedPage(browser);
      await page.goto(`${dev.url}/#/executions/${execId}`);
      await waitForText(page, ".io", "300 items");
      const toggles = () =>
        page.$$eval(
          ".io details:first-child .j-toggle",
          (els) =>
            els.map((e) => [e.textContent!.replace(/\s+/g, " ").trim(), e.getAttribute("aria-expanded")]),
        );
      assert.deepEqual((await toggles()).filter(([text]) => /items/.test(text!)), [[
        "▸ [ 300 items ]",
        "false",
      ]]);
      // A list of 100 is open, as before.
      assert.ok((await toggles()).some(([text, open]) => text === "▾ [" && open === "true"));
      await page.$$eval(".io .j-toggle", (els) => {
        const folded = els.find((e) => e.textContent!.includes("300 items")) as unknown as { click(): void };
        folded.click();
      });
      await waitForText(page, ".io", '"n": 299');
    } finally {
      await browser.close();
      await dev.stop();
    }
  },
});
