/**
 * An execution's log records a page at a time (API.md: lists return `{"items", "next_cursor"}` with cursor
 * pagination), against a real `compozy dev`: `GET /api/logs` pages with `?cursor=`, and
 * `compozy executions logs` prints every record, past the 5000 that one page holds.
 */
import assert from "node:assert/strict";
import { writeChattyProject } from "./support/chatty_project.ts";
import { runCli, startDev } from "./support/dev_server.ts";
import { launchBrowser, recordedPage, waitForText } from "./support/browser.ts";

/** Lines each item's call prints; a call's log budget (256 KiB at 256 bytes a line) holds about 1000. */
const LINES_PER_ITEM = 900;
const ITEMS = 6;

const CHAT_SOURCE = `export default (input: { item: number }) => {
  for (let i = 1; i <= ${LINES_PER_ITEM}; i++) console.log("item " + input.item + " line " + i);
  return { item: input.item };
};
`;

Deno.test({
  name: "log records come a page at a time, and the CLI prints every page",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await writeChattyProject("log-pages", CHAT_SOURCE);
    // Tools log at info: the level the records are kept at.
    const dev = await startDev({ dir, env: { COMPOZY_LOG_LEVEL: "info" } });
    try {
      const state = await dev.run("chatty", { items: [...Array(ITEMS).keys()] }, { wait: "2m" });
      assert.equal(state.status, "SUCCESS", JSON.stringify(state).slice(0, 500));
      const execId: string = state.exec_id;
      const total = ITEMS * LINES_PER_ITEM;

      /** Every record, read a page of 2000 at a time; the number of pages read. */
      const readAll = async () => {
        const records: {
          seq: number;
          message: string;
          workflow_id: string | null;
          task_id: string | null;
        }[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const query: string = `exec_id=${execId}&limit=2000${cursor === null ? "" : `&cursor=${cursor}`}`;
          const response = await dev.fetch(`/api/logs?${query}`);
          assert.equal(response.status, 200);
          const page = await response.json();
          assert.ok("next_cursor" in page, "a list has next_cursor");
          records.push(...page.items);
          cursor = page.next_cursor;
          pages++;
        } while (cursor !== null && pages < 20);
        assert.equal(cursor, null, "the last page's cursor is null");
        return { records, pages };
      };
      const lines = (records: { message: string }[]) =>
        records.filter((r) => /^item \d+ line \d+$/.test(r.message)).length;

      await t.step("?cursor= pages through every record once, in order", async () => {
        // Records reach the log stream on their own path, a moment after the execution's end.
        let read = await readAll();
        for (const deadline = Date.now() + 60_000; lines(read.records) < total && Date.now() < deadline;) {
          await new Promise((r) => setTimeout(r, 250));
          read = await readAll();
        }
        assert.equal(lines(read.records), total);
        assert.ok(read.pages >= 3, `${read.pages} pages of 2000`);
        const seqs = read.records.map((r) => r.seq);
        assert.equal(new Set(seqs).size, seqs.length, "no record twice");
        assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
        // A tool's line names its workflow and its task, as the API lists them (not only their exec ids).
        const said = read.records.filter((r) => /^item \d+ line \d+$/.test(r.message));
        assert.deepEqual(new Set(said.map((r) => r.workflow_id)), new Set(["chatty"]));
        assert.ok(
          said.every((r) => typeof r.task_id === "string" && /^each\[\d+\]/.test(r.task_id)),
          String(said[0]?.task_id),
        );
      });

      await t.step("a cursor the API did not give is a 400 naming cursor", async () => {
        for (const bad of ["abc", "0", "-1", "1.5", "9".repeat(16)]) {
          const response = await dev.fetch(`/api/logs?exec_id=${execId}&cursor=${bad}`);
          assert.equal(response.status, 400, bad);
          const body = await response.json();
          assert.equal(body.error.code, "validation_failed");
          assert.deepEqual(body.error.details.map((d: { path: string }) => d.path), ["/cursor"]);
        }
      });

      await t.step("compozy executions logs prints all of them, past one page of 5000", async () => {
        const env = { COMPOZY_SERVER: dev.url };
        const logs = await runCli(["executions", "logs", execId], env);
        assert.equal(logs.code, 0, logs.stderr);
        assert.equal(logs.stdout.split("\n").filter((l) => / item \d+ line \d+$/.test(l)).length, total);
        const json = await runCli(["executions", "logs", execId, "--json"], env);
        const records = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
        assert.equal(lines(records), total);
        // --follow of an ended execution reads every page too, then stops.
        const follow = await runCli(["executions", "logs", execId, "--follow"], env);
        assert.equal(follow.code, 0, follow.stderr);
        assert.equal(follow.stdout.split("\n").filter((l) => / item \d+ line \d+$/.test(l)).length, total);
      });

      await t.step("the console's Logs tab says it shows the first 5000 and where the rest are", async () => {
        const browser = await launchBrowser();
        try {
          const { page } = await recordedPage(browser);
          await page.goto(`${dev.url}/#/executions/${execId}`);
          await waitForText(page, "nav.tabs", "Logs (5000+)");
          const tabs = await page.$$("nav.tabs button");
          const labels: string[] = await Promise.all(tabs.map((b) => b.evaluate((e) => e.textContent ?? "")));
          await tabs[labels.findIndex((l: string) => l.startsWith("Logs"))].click();
          await waitForText(page, "#logs-more", `compozy executions logs ${execId}`);
          assert.equal(await page.$$eval("ol.logs > li", (items) => items.length), 5000);
        } finally {
          await browser.close();
        }
      });
    } finally {
      await dev.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
