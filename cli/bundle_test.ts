/** Bundles: the digest depends on content only, and unpacking refuses paths outside the deployment. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { BUNDLE_FORMAT, bundleDigest, unpackBundle } from "./bundle.ts";
import { CliError } from "./cli_error.ts";

const bundle = (files: Record<string, string>) => ({
  format: BUNDLE_FORMAT as typeof BUNDLE_FORMAT,
  project: "p",
  created_at: new Date().toISOString(),
  files,
});

Deno.test("bundle digest and unpacking", async (t) => {
  const base = await Deno.makeTempDir({ prefix: "compozy-bundle-" });
  try {
    await t.step("the digest is the content's, whatever the order or the build time", () => {
      const a = bundle({ "a.yaml": "1", "b.yaml": "2" });
      const b = { ...bundle({ "b.yaml": "2", "a.yaml": "1" }), created_at: "later" };
      assert.equal(bundleDigest(a), bundleDigest(b));
      assert.notEqual(bundleDigest(a), bundleDigest(bundle({ "a.yaml": "1", "b.yaml": "3" })));
    });
    await t.step("files are written under deployments/<digest>/", async () => {
      const b = bundle({ "compozy.yaml": "name: p\n", "workflows/w.yaml": "id: w\n" });
      const { dir, digest } = await unpackBundle(b, base);
      assert.equal(dir, join(base, "deployments", digest));
      assert.equal(await Deno.readTextFile(join(dir, "workflows/w.yaml")), "id: w\n");
    });
    for (const path of ["../escape.yaml", "/etc/passwd", "a/../../escape.yaml"]) {
      await t.step(`a path that leaves the deployment is refused: ${path}`, async () => {
        await assert.rejects(() => unpackBundle(bundle({ [path]: "x" }), base), CliError);
      });
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
