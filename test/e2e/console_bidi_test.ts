/**
 * Text an execution carries is isolated for the bidirectional algorithm: a JSON key holding U+202E (right-to-left
 * override) reversed the rest of its line, drawing the key's value to its left (outside review brk-ui, defect
 * 4). The layout is measured in the system Chromium; the control itself is shown escaped (`\u202e`).
 */
import assert from "node:assert/strict";
import { launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { CONSOLE_FIXTURE as FIXTURE, startApproval } from "./support/console_approval.ts";
import { startDev } from "./support/dev_server.ts";

const RLO = "\u202e";

Deno.test("a bidi override in an execution's input does not reorder the text around it", async () => {
  const [dev, browser] = await launchBrowserBeside(startDev({ fixture: FIXTURE }), (d) => d.stop());
  try {
    const exec_id = await startApproval(dev, { item: "chair", [`${RLO}spoof`]: 12345 });
    const { page } = await recordedPage(browser);
    await page.goto(`${dev.url}/#/executions/${exec_id}`);
    await waitForText(page, ".io .j-key", "spoof");
    // The row of that key: `"‮spoof": 12345`. Its value must still be drawn after (right of) the key.
    const boxes = await page.evaluate(`(() => {
      const key = [...document.querySelectorAll(".io .j-key")].find((k) => k.textContent.includes("spoof"));
      const value = key.parentElement.querySelector(".j-num");
      const k = key.getBoundingClientRect();
      const v = value.getBoundingClientRect();
      return { keyRight: k.right, valueLeft: v.left };
    })()`) as { keyRight: number; valueLeft: number };
    assert.ok(
      boxes.valueLeft >= boxes.keyRight - 0.5,
      `the value is drawn left of its key (value at ${boxes.valueLeft}, key ends at ${boxes.keyRight})`,
    );
    // The control itself is shown as its JSON escape, so it cannot reverse the key it is in either.
    const keyText = await page.$$eval(".io .j-key", (keys) => keys.map((k) => k.textContent));
    assert.ok(keyText.includes('"\\u202espoof"'), `keys shown: ${JSON.stringify(keyText)}`);
  } finally {
    await browser.close();
    await dev.stop();
  }
});
