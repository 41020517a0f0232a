/**
 * A task waiting for its sub-workflow's end is shown as such on its execution's page (in the system Chromium):
 * "Why it waits" said "sleeps." (its task.waiting_started has no signal and no timer, which the page took for
 * a sleep), and the timeline's hatched span was titled "sleeping".
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { startDev } from "./support/dev_server.ts";

const FILES: Record<string, string> = {
  "compozy.yaml": "name: console-sub-wait\nworkflows:\n  - source: ./parent.yaml\n  - source: ./child.yaml\n",
  "parent.yaml": "id: parent\ntasks:\n  - { id: delegate, use: workflow(id=child) }\n",
  "child.yaml": "id: child\ntasks:\n  - { id: approval, type: wait, signal: approve }\n",
};

Deno.test("a task waiting for its sub-workflow says so on the execution's page", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-console-sub-wait-" });
  for (const [file, text] of Object.entries(FILES)) await Deno.writeTextFile(join(dir, file), text);
  const [dev, browser] = await launchBrowserBeside(startDev({ dir }), (d) => d.stop());
  try {
    const started = await dev.fetch("/api/workflows/parent/executions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(started.status, 202);
    const { exec_id } = await started.json();
    const { page } = await recordedPage(browser);
    await page.goto(`${dev.url}/#/executions/${exec_id}`);
    await waitForText(page, ".status", "WAITING");
    await waitForText(page, ".why-wait", "waits for its sub-workflow child to end");
    // The timeline is drawn from the history, which the page reads apart from the state behind "Why it
    // waits": its span may come a moment later (CI once read none just after the panel showed).
    await page.waitForSelector(".tl-wait", { timeout: 20_000 });
    const titles = await page.$$eval(".tl-wait", (spans) => spans.map((s) => s.getAttribute("title")));
    assert.deepEqual(titles, ["waiting for its sub-workflow"]);
  } finally {
    await browser.close();
    await dev.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
