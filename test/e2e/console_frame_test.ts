/**
 * Clickjacking: the console's buttons (cancel, pause, re-run) act on executions, so no other page may frame
 * it. The system Chromium loads a page of another origin that frames the console of a `compozy dev` without
 * an API key (where a framed console would otherwise be fully working) and checks the frame stays empty.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import type { Page } from "puppeteer-core";
import { launchBrowserBeside, recordedPage } from "./support/browser.ts";
import { startDev } from "./support/dev_server.ts";

const FIXTURE = resolve(import.meta.dirname!, "fixtures/console");

Deno.test("another site cannot frame the web console", async () => {
  const [dev, browser] = await launchBrowserBeside(startDev({ fixture: FIXTURE }), (d) => d.stop());
  const dir = await Deno.makeTempDir({ prefix: "compozy-console-frame-" });
  try {
    const framer = join(dir, "framer.html");
    await Deno.writeTextFile(framer, `<!doctype html><iframe id="target" width="900" height="600"></iframe>`);
    const { page } = await recordedPage(browser);
    await page.goto(`file://${framer}`);
    await page.$eval("#target", (el, url) => {
      (el as unknown as { src: string }).src = url as string;
    }, `${dev.url}/#/executions`);
    // Either the console renders in the frame, or Chromium refuses it (frame-ancestors): wait for either.
    const outcome = await waitForFrameOutcome(page);
    assert.equal(outcome, "refused", "the console rendered inside another site's frame");
    const res = await dev.fetch("/");
    await res.body?.cancel();
    assert.match(res.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    assert.equal(res.headers.get("x-frame-options"), "DENY");
  } finally {
    await browser.close();
    await dev.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * What became of the frame: the console rendered in it, or Chromium refused the response and put its error
 * page there instead (an `about:blank` document whose root carries `subframe`).
 */
async function waitForFrameOutcome(page: Page): Promise<"rendered" | "refused"> {
  const deadline = Date.now() + 30_000;
  const probe = `document.querySelector(".brand")?.textContent === "Compozy" ? "rendered"
    : document.documentElement.hasAttribute("subframe") ? "refused" : ""`;
  while (Date.now() < deadline) {
    for (const frame of page.mainFrame().childFrames()) {
      const outcome = await frame.evaluate(probe).catch(() => "");
      if (outcome === "rendered" || outcome === "refused") return outcome;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the framed console neither rendered nor was refused within 30 s");
}
