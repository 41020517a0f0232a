/**
 * The console's serving: `GET /` and its assets through the API app (no key needed for code that holds no
 * data), ETags answered with 304, gzip, the page-weight budget, and the committed bundle matching its sources.
 */
import assert from "node:assert/strict";
import { createApp } from "../../server/app.ts";
import { buildConsoleAssets, serializeAssets } from "../../server/console/build.ts";
import { consolePageWeight } from "../../server/console/mod.ts";
import { fixtureProject } from "./fixture.ts";
import { MemoryExecutionClient } from "./memory_client.ts";

const { project } = await fixtureProject();
const app = createApp({
  client: new MemoryExecutionClient(project),
  project,
  version: { version: "9.9.9" },
  health: { check: () => Promise.resolve({ status: "ok", components: {} }) },
  apiKey: "secret-key",
});

Deno.test("console page and assets", async (t) => {
  await t.step("GET / is the page, linking only its own assets; the API still needs the key", async () => {
    const res = await app.request("/");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const html = await res.text();
    assert.match(html, /<script type="module" src="\/console\/app\.js\?v=[0-9a-f]{8}">/);
    assert.match(html, /<link rel="stylesheet" href="\/console\/app\.css\?v=[0-9a-f]{8}">/);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
    assert.equal((await app.request("/api/workflows")).status, 401);
  });
  await t.step("assets carry an ETag and answer 304 when it matches", async () => {
    for (const path of ["/", "/console/app.js", "/console/app.css"]) {
      const res = await app.request(path);
      await res.body?.cancel();
      const etag = res.headers.get("etag")!;
      assert.match(etag, /^"[0-9a-f]{24}"$/);
      assert.equal(res.headers.get("cache-control"), "no-cache");
      const again = await app.request(path, { headers: { "if-none-match": etag } });
      assert.equal(again.status, 304, path);
      assert.equal(await again.text(), "");
      const changed = await app.request(path, { headers: { "if-none-match": '"other"' } });
      assert.equal(changed.status, 200);
      await changed.body?.cancel();
    }
  });
  await t.step("gzip for clients that accept it", async () => {
    const res = await app.request("/console/app.js", { headers: { "accept-encoding": "gzip, br" } });
    assert.equal(res.headers.get("content-encoding"), "gzip");
    const text = await new Response(res.body!.pipeThrough(new DecompressionStream("gzip"))).text();
    assert.match(text, /API key/);
  });
  await t.step("the page weighs at most 200 KB compressed", async () => {
    const weight = await consolePageWeight();
    assert.ok(weight > 1000 && weight <= 200 * 1024, `${weight} B`);
  });
  await t.step(
    "the committed assets are a fresh build of server/console/ui (run `deno task console`)",
    async () => {
      const committed = await Deno.readTextFile(new URL("../../server/console/assets.json", import.meta.url));
      assert.ok(
        committed === serializeAssets(await buildConsoleAssets()),
        "server/console/assets.json is stale",
      );
    },
  );
});
