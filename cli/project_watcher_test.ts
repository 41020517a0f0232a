import assert from "node:assert/strict";
import { changeKind } from "./project_watcher.ts";

Deno.test("changeKind: YAML and the env file are configuration, modules are code, other files nothing", () => {
  const kinds = Object.fromEntries(
    [
      "/p/compozy.yaml",
      "/p/workflows/a.YML",
      "/p/.env",
      "/p/secrets.env",
      "/p/tools/t.ts",
      "/p/tools/lib.mjs",
      "/p/tools/data.json",
      "/p/README.md",
      "/p/notes.txt",
      "/p/out.log",
      "/p/tools/t.ts~",
      "/p/tools/.t.ts.swp",
    ].map((path) => [path, changeKind(path, "/p/secrets.env") ?? "none"]),
  );
  assert.deepEqual(kinds, {
    "/p/compozy.yaml": "config",
    "/p/workflows/a.YML": "config",
    "/p/.env": "config",
    "/p/secrets.env": "config",
    "/p/tools/t.ts": "code",
    "/p/tools/lib.mjs": "code",
    "/p/tools/data.json": "code",
    "/p/README.md": "none",
    "/p/notes.txt": "none",
    "/p/out.log": "none",
    "/p/tools/t.ts~": "none",
    "/p/tools/.t.ts.swp": "none",
  });
});
