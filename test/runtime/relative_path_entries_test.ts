/**
 * Relative PATH entries (`.`, an empty entry, `bin`) name a different folder in each working folder, which
 * no check of `write` grants looked at (outside break attempt sbx29, left open there). With `.` on PATH the
 * engine found `nats-server` as `nats-server` and started the one in the folder it ran in; with `bin`, the
 * compiled binary's `deno` was `bin/deno`, found from the runtime's folder and run from each tool's folder.
 * Now nothing is looked up in them, and the compozy command and the runtime drop them from their own PATH
 * (so their children never see them) with one warning. Real processes, in a folder holding planted programs.
 */
import assert from "node:assert/strict";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PLANTED = "#!/bin/sh\necho planted\n";

/** A folder holding `nats-server` and `bin/deno` as a tool granted `write` there could plant them. */
async function plantedFolder(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-relative-path-" });
  await Deno.mkdir(join(dir, "bin"));
  await Deno.writeTextFile(join(dir, "nats-server"), PLANTED, { mode: 0o755 });
  await Deno.writeTextFile(join(dir, "bin", "deno"), PLANTED, { mode: 0o755 });
  return dir;
}

/** The test's PATH behind `.`, `bin` and an empty entry, with the folder of the deno running the tests. */
function relativeFirstPath(): string {
  return [".", "bin", "", dirname(Deno.execPath()), Deno.env.get("PATH") ?? ""].join(delimiter);
}

Deno.test("programs are never looked up in relative PATH entries", async () => {
  const dir = await plantedFolder();
  try {
    const script = join(dir, "look_up.ts");
    await Deno.writeTextFile(
      script,
      `import { findNatsServerBinary } from ${JSON.stringify(join(REPO, "pkg/nats/server.ts"))};
       import { NatsServerNotFoundError } from ${JSON.stringify(join(REPO, "pkg/nats/errors.ts"))};
       import { denoExecutable } from ${JSON.stringify(join(REPO, "pkg/runtime/deno_executable.ts"))};
       import { runtimeCode } from ${JSON.stringify(join(REPO, "pkg/runtime/runtime_code.ts"))};
       import { dropRelativeEntries } from ${JSON.stringify(join(REPO, "pkg/utils/search_path.ts"))};
       const nats = await findNatsServerBinary().catch((e) => {
         if (e instanceof NatsServerNotFoundError) return "none";
         throw e;
       });
       const { pathFolders } = await runtimeCode();
       const deno = denoExecutable();
       const dropped = dropRelativeEntries();
       const child = await new Deno.Command("/bin/sh", { args: ["-c", "printf %s \\"$PATH\\""] }).output();
       console.log(JSON.stringify({
         nats,
         deno,
         pathFolders,
         dropped,
         childPath: new TextDecoder().decode(child.stdout),
       }));`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "--config", join(REPO, "deno.json"), script],
      cwd: dir,
      env: { PATH: relativeFirstPath(), COMPOZY_AS_COMPILED: "1", NATS_SERVER_BIN: "" },
      stderr: "inherit",
    }).output();
    assert.ok(out.success, "the look-up script ran");
    const found = JSON.parse(new TextDecoder().decode(out.stdout));
    for (const program of [found.nats, found.deno]) {
      assert.ok(
        program === "none" || (isAbsolute(program) && !program.startsWith(dir)),
        JSON.stringify(found),
      );
    }
    assert.ok(found.pathFolders.every((f: string) => isAbsolute(f)), JSON.stringify(found.pathFolders));
    assert.deepEqual(found.dropped, [".", "bin", ""]);
    assert.ok(
      found.childPath.split(delimiter).every((entry: string) => isAbsolute(entry)),
      `a child inherited relative entries: ${found.childPath}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the compozy command says once that it ignores relative PATH entries", async () => {
  const dir = await plantedFolder();
  try {
    await Deno.writeTextFile(join(dir, "compozy.yaml"), "name: relative-path\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", join(REPO, "main.ts"), "validate", "--cwd", dir],
      cwd: dir,
      env: { PATH: relativeFirstPath(), NO_COLOR: "1" },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    const warnings = stderr.split("\n").filter((line) => line.includes("PATH holds relative entries"));
    assert.equal(warnings.length, 1, stderr);
    assert.match(warnings[0], /^warning: PATH holds relative entries \("\.", "bin", ""\).*ignored/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
