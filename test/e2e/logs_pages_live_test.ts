/**
 * brk28: `GET /api/logs` paged while the execution logs, against a real `compozy dev`: small pages (1 to 13),
 * a reader going on from its last record after `next_cursor: null`, must read every record once, in order,
 * the same as a read after the run ended.
 */
import assert from "node:assert/strict";
import { writeChattyProject } from "./support/chatty_project.ts";
import { startDev } from "./support/dev_server.ts";

const CHAT_SOURCE = `export default async (input: { item: number }) => {
  for (let i = 1; i <= 300; i++) {
    console.log("item " + input.item + " line " + i);
    if (i % 50 === 0) await new Promise((r) => setTimeout(r, 20));
  }
  return { item: input.item };
};
`;

Deno.test({
  name: "log pages read while the execution logs hold every record once, in order",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await writeChattyProject("log-pages-live", CHAT_SOURCE);
    const dev = await startDev({ dir, env: { COMPOZY_LOG_LEVEL: "info" } });
    try {
      const start = await dev.fetch("/api/workflows/chatty/executions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input: { items: [0, 1, 2, 3, 4, 5] } }),
      });
      const execId: string = (await start.json()).exec_id;
      assert.ok(execId);
      const page = async (limit: number, cursor: number | null) => {
        const query = `exec_id=${execId}&limit=${limit}${cursor === null ? "" : `&cursor=${cursor}`}`;
        const response = await dev.fetch(`/api/logs?${query}`);
        assert.equal(response.status, 200);
        return await response.json() as {
          items: { seq: number; message: string }[];
          next_cursor: string | null;
        };
      };
      const live: number[] = [];
      let cursor: number | null = null;
      let requests = 0;
      let quietSince = 0;
      // Until the run ended and no record came for 2 s.
      while (true) {
        const got = await page(1 + (requests++ % 13), cursor);
        live.push(...got.items.map((r) => r.seq));
        if (got.next_cursor !== null) {
          assert.ok(Number(got.next_cursor) > (live.at(-1) ?? 0));
          cursor = Number(got.next_cursor);
          quietSince = 0;
          continue;
        }
        cursor = live.length ? live.at(-1)! + 1 : null;
        if (got.items.length) quietSince = 0;
        const state = await (await dev.fetch(`/api/executions/${execId}`)).json();
        if (state.status === "SUCCESS") {
          if (quietSince === 0) quietSince = performance.now();
          else if (performance.now() - quietSince > 2_000) break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const after: number[] = [];
      let next: number | null = null;
      do {
        const got = await page(5000, next);
        after.push(...got.items.map((r) => r.seq));
        next = got.next_cursor === null ? null : Number(got.next_cursor);
      } while (next !== null);
      assert.ok(after.length >= 1800, `${after.length} records`);
      assert.deepEqual(live, after, `live read ${live.length} records in ${requests} requests`);
    } finally {
      await dev.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
