import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateProtos } from "./protos.ts";

const committed = fileURLToPath(new URL("../pkg/pb/", import.meta.url));

Deno.test("pkg/pb is what `deno task protos` generates from proto/ (run it after changing a .proto)", async () => {
  const out = await Deno.makeTempDir({ prefix: "compozy-protos-" });
  try {
    const generated = await generateProtos(out);
    assert.ok(generated.length >= 6);
    for (const file of generated) {
      const name = basename(file);
      const expected = await Deno.readTextFile(join(committed, name)).catch(() => `(missing pkg/pb/${name})`);
      assert.equal(
        await Deno.readTextFile(file),
        expected,
        `pkg/pb/${name} is stale: run 'deno task protos'`,
      );
    }
    const committedFiles = [];
    for await (const e of Deno.readDir(committed)) if (e.name.endsWith("_pb.ts")) committedFiles.push(e.name);
    assert.deepEqual(committedFiles.sort(), generated.map((f) => basename(f)).sort());
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
