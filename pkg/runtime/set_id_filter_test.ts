import assert from "node:assert/strict";
import { setIdFilterLibrary } from "./set_id_filter.ts";

/** Runs `installSetIdFilter(library)` in a `deno` of its own with `ffi` on `library` only; returns its line. */
async function installIn(library: string, after: string): Promise<string> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { installSetIdFilter } from ${JSON.stringify(import.meta.resolve("./set_id_filter.ts"))};
       try {
         installSetIdFilter(${JSON.stringify(library)});
         ${after}
       } catch (e) {
         console.log((e as Error).name + ": " + (e as Error).message);
       }`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--no-config",
        `--allow-ffi=${library}`,
        "--allow-read",
        "--allow-write",
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).trim();
  } finally {
    await Deno.remove(script);
  }
}

Deno.test("installSetIdFilter fails with a SetIdFilterError when the library cannot be opened", async () => {
  const line = await installIn("/nonexistent/libc.so.6", `console.log("installed");`);
  assert.match(
    line,
    /^SetIdFilterError: the sandbox could not refuse set-user-ID modes: opening \/nonexistent/,
  );
});

Deno.test("installSetIdFilter refuses the bits, keeps other modes and revokes ffi", async () => {
  const library = setIdFilterLibrary();
  assert.ok(library, "the runtime's C library (the filter is Linux-only)");
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/f`;
    const line = await installIn(
      library,
      `Deno.writeTextFileSync(${JSON.stringify(file)}, "x");
       Deno.chmodSync(${JSON.stringify(file)}, 0o1755);
       let setuid = "set";
       try { Deno.chmodSync(${JSON.stringify(file)}, 0o4755); } catch (e) { setuid = (e as Error).name; }
       console.log(setuid, Deno.permissions.querySync({ name: "ffi", path: ${
        JSON.stringify(library)
      } }).state);`,
    );
    assert.equal(line, "PermissionDenied prompt");
    assert.equal(Deno.statSync(file).mode! & 0o7777, 0o1755);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
