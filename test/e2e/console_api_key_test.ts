/**
 * An API key typed with a character no HTTP header can carry (a typographic quote or dash, pasted from a
 * document) is refused at the key prompt, naming the character. It was kept, every fetch then threw before
 * sending, and the console said "Cannot reach the server" (an execution's page: reconnecting, forever), with
 * no way back to the prompt (outside review rev35).
 */
import assert from "node:assert/strict";
import { fill, launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { CONSOLE_FIXTURE } from "./support/console_approval.ts";
import { startDev } from "./support/dev_server.ts";

Deno.test({
  name: "an API key no header can carry is refused at the prompt, naming the character",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const [dev, browser] = await launchBrowserBeside(
      startDev({ fixture: CONSOLE_FIXTURE, args: ["--api-key", "sekret"] }),
      (d) => d.stop(),
    );
    try {
      const { page } = await recordedPage(browser);
      await page.goto(`${dev.url}/#/executions`);
      await waitForText(page, "#auth-message", "requires an API key (401)");
      await fill(page, "#api-key", "\u201csekret\u201d");
      await page.click(".key-prompt button[type=submit]");
      await waitForText(page, "#key-error", "U+201C");
      assert.equal(await page.evaluate(() => sessionStorage.getItem("compozy.apiKey")), null);
      await fill(page, "#api-key", "sekret");
      await page.click(".key-prompt button[type=submit]");
      await page.waitForSelector("#executions");
    } finally {
      await browser.close();
      await dev.stop();
    }
  },
});
