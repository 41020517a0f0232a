import assert from "node:assert/strict";
import { join, relative } from "node:path";
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

Deno.test("red team 8 S3: what a tool writes under its write grant reloads nothing; its code still does", async () => {
  // Before: each .json a tool wrote into its `write: ["./out"]` folder was a code change, and compozy dev
  // --watch restarted the runtime for every write (103 times in 40 s), stalling other workflows' calls.
  const root = await Deno.makeTempDir({ prefix: "compozy-watch-grants-" });
  const { loadProject } = await import("../engine/domain/project/mod.ts");
  const { watchProject, writeGranted } = await import("./project_watcher.ts");
  let watcher: { stop(): void } | undefined;
  try {
    await Deno.mkdir(join(root, "tools/out"), { recursive: true });
    await Deno.writeTextFile(join(root, "compozy.yaml"), "name: w\nworkflows:\n  - source: ./wf.yaml\n");
    await Deno.writeTextFile(
      join(root, "wf.yaml"),
      "id: wf\ntools:\n  - id: wr\n    execute: ./tools/wr.ts\n    permissions: { write: [./out] }\n" +
        "tasks:\n  - { id: a, use: tool(id=wr) }\n",
    );
    await Deno.writeTextFile(join(root, "tools/wr.ts"), "export default () => 1;\n");
    const project = await loadProject(root, { processEnv: {} });
    assert.deepEqual(writeGranted(project), [join(root, "tools/out")]);
    const batches: string[][] = [];
    watcher = watchProject(root, (changes) => batches.push(changes.map((c) => relative(root, c.path))), {
      ignored: () => writeGranted(project),
      quietMs: 50,
    });
    // Writes into the granted folder first, then one change of the tool's code: the batch that the code's
    // change ends (the watcher reports after a quiet period) must hold that change alone.
    for (let i = 0; i < 5; i++) await Deno.writeTextFile(join(root, "tools/out/report.json"), `{"n":${i}}`);
    await Deno.writeTextFile(join(root, "tools/wr.ts"), "export default () => 2;\n");
    for (let i = 0; i < 200 && batches.flat().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(batches.flat(), ["tools/wr.ts"]);
  } finally {
    watcher?.stop();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a folder of the project's files moved away or back is a change; another folder is not", async () => {
  // Before: its name has no extension, so `mv tools tools.old` reloaded nothing and dev ran on with tools it
  // could no longer load, saying nothing.
  const root = await Deno.makeTempDir({ prefix: "compozy-watch-folders-" });
  const { loadProject } = await import("../engine/domain/project/mod.ts");
  const { projectFolders, watchProject } = await import("./project_watcher.ts");
  let watcher: { stop(): void } | undefined;
  try {
    await Deno.mkdir(join(root, "flows/tools"), { recursive: true });
    await Deno.mkdir(join(root, "notes"));
    await Deno.writeTextFile(
      join(root, "compozy.yaml"),
      "name: w\nworkflows:\n  - source: ./flows/wf.yaml\n",
    );
    await Deno.writeTextFile(
      join(root, "flows/wf.yaml"),
      "id: wf\ntools:\n  - id: t\n    execute: ./tools/t.ts\ntasks:\n  - { id: a, use: tool(id=t) }\n",
    );
    await Deno.writeTextFile(join(root, "flows/tools/t.ts"), "export default () => 1;\n");
    const project = await loadProject(root, { processEnv: {} });
    assert.deepEqual(projectFolders(project), {
      config: [join(root, "flows")],
      code: [join(root, "flows/tools")],
    });
    const batches: string[][] = [];
    watcher = watchProject(
      root,
      (changes) => batches.push(changes.map((c) => `${c.kind} ${relative(root, c.path)}`)),
      { folders: () => projectFolders(project), quietMs: 50 },
    );
    const settled = async () => {
      for (let i = 0; i < 200 && batches.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      return batches.splice(0).flat();
    };
    await Deno.rename(join(root, "notes"), join(root, "notes.old"));
    await Deno.mkdir(join(root, "drafts"));
    await Deno.rename(join(root, "flows/tools"), join(root, "flows/tools.old"));
    assert.deepEqual(await settled(), ["code flows/tools"]);
    await Deno.rename(join(root, "flows/tools.old"), join(root, "flows/tools"));
    assert.deepEqual(await settled(), ["code flows/tools"]);
    await Deno.rename(join(root, "flows"), join(root, "flows.old"));
    assert.deepEqual(await settled(), ["code flows"]);
  } finally {
    watcher?.stop();
    await Deno.remove(root, { recursive: true });
  }
});
