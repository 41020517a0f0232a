/**
 * `deno task compile` without network: one clear line naming what failed, that it needs network once and
 * `DENORT_BIN` for offline builds; no empty output folder left behind. The download is made to fail with a
 * proxy that refuses connections; skipped where Deno's runtime is already cached (nothing to download).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { compile } from "./compile.ts";

const denoDir = Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache/deno");
const version = Deno.version.deno;
let cached = false;
try {
  cached = [...Deno.readDirSync(join(denoDir, "dl/release", `v${version}`))].some((e) =>
    e.name.startsWith("denort")
  );
} catch {
  cached = false;
}

Deno.test({
  name: "compile without network: one line with the way out, no empty dist",
  ignore: cached || Deno.env.get("DENORT_BIN") !== undefined,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "compozy-compile-" });
    const output = join(root, "dist", "compozy");
    try {
      const result = await compile(output, {
        HTTPS_PROXY: "http://127.0.0.1:9",
        https_proxy: "http://127.0.0.1:9",
      });
      assert.equal(result.code, 1);
      assert.equal(result.message!.split("\n").length, 1, result.message);
      assert.match(
        result.message!,
        /^deno compile could not download https:\/\/dl\.deno\.land\/\S+denort\S+\.zip/,
      );
      assert.match(result.message!, /needs network once/);
      assert.match(result.message!, /DENORT_BIN/);
      assert.ok(!result.message!.includes("Stack backtrace"));
      await assert.rejects(Deno.stat(join(root, "dist")), Deno.errors.NotFound, "no empty dist/ left");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
