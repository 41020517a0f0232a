/**
 * A tool with a `write` grant may not plant set-user-ID or set-group-ID files (issue 10, rt33). The runtime
 * may run as root, and such a file runs as its owner for whoever on the host starts it, outside every
 * sandbox. Every entry point a tool has that sets a mode is tried through a real sandbox: each is refused,
 * and nothing under the granted folder carries the bits afterwards.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeSandboxModules } from "../../cli/sandbox_cache.ts";
import { configureSandboxModules, sandboxModules } from "../../pkg/runtime/sandbox_modules.ts";
import { kernelLimitsLibrary } from "../../pkg/runtime/kernel_limits.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { BUNDLE_PATH } from "../../scripts/sandbox_bundle.ts";
import { call, ToolDir } from "./_helpers.ts";

const SET_ID = 0o6000;
/** Entry points whose mode Deno or the kernel masks: they may succeed, without the bits. */
const MASKED = new Set([
  "node openSync mode",
  "Deno.openSync mode",
  "Deno.mkdirSync mode",
  "node mkdirSync mode",
  "node promises.mkdir mode",
  "node promises.open mode",
  "node promises.writeFile mode",
  "node createWriteStream mode",
]);

const PLANTER = `import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import process from "node:process";

const M = 0o6755;
export default async (input: { out: string; setuidSource: string; plainSource: string; libc: string }) => {
  const at = (name: string) => input.out + "/" + name;
  const attempts: Record<string, () => unknown> = {
    "Deno.chmodSync": () => (Deno.writeTextFileSync(at("a"), "x"), Deno.chmodSync(at("a"), M)),
    "Deno.chmod": async () => (await Deno.writeTextFile(at("b"), "x"), await Deno.chmod(at("b"), M)),
    "Deno.writeFileSync mode": () => Deno.writeFileSync(at("c"), new Uint8Array([1]), { mode: M }),
    "Deno.writeTextFile mode": () => Deno.writeTextFile(at("d"), "x", { mode: M }),
    "Deno.copyFileSync of a setuid file": () => Deno.copyFileSync(input.setuidSource, at("e")),
    "Deno.copyFile of a setuid file": () => Deno.copyFile(input.setuidSource, at("f")),
    "Deno.chmodSync of a folder (setgid)": () => (Deno.mkdirSync(at("g")), Deno.chmodSync(at("g"), 0o2755)),
    "node chmodSync": () => (fs.writeFileSync(at("h"), "x"), fs.chmodSync(at("h"), M)),
    "node fchmodSync": () => {
      const fd = fs.openSync(at("i"), "w");
      try { fs.fchmodSync(fd, M); } finally { fs.closeSync(fd); }
    },
    "node fchmod": () => new Promise<void>((resolve, reject) => {
      const fd = fs.openSync(at("j"), "w");
      fs.fchmod(fd, M, (e) => (fs.closeSync(fd), e ? reject(e) : resolve()));
    }),
    "node FileHandle.chmod": async () => {
      const handle = await fsp.open(at("k"), "w");
      try { await handle.chmod(M); } finally { await handle.close(); }
    },
    "node promises.chmod": async () => (await fsp.writeFile(at("l"), "x"), await fsp.chmod(at("l"), M)),
    "node writeFileSync mode": () => fs.writeFileSync(at("m"), "x", { mode: M }),
    "node copyFileSync of a setuid file": () => fs.copyFileSync(input.setuidSource, at("n")),
    "node promises.copyFile of a setuid file": () => fsp.copyFile(input.setuidSource, at("o")),
    "node cpSync of a setuid file": () => fs.cpSync(input.setuidSource, at("p")),
    "node promises.cp of a setuid file": () => fsp.cp(input.setuidSource, at("s")),
    "node openSync mode": () => fs.closeSync(fs.openSync(at("q"), "w", M)),
    "Deno.openSync mode": () => Deno.openSync(at("r"), { write: true, create: true, mode: M }).close(),
    "Deno.mkdirSync mode": () => Deno.mkdirSync(at("t"), { mode: M }),
    "node mkdirSync mode": () => fs.mkdirSync(at("u"), { mode: M }),
    "node promises.mkdir mode": () => fsp.mkdir(at("v"), { mode: M }),
    "node promises.open mode": async () => (await fsp.open(at("w"), "w", M)).close(),
    "node promises.writeFile mode": () => fsp.writeFile(at("x"), "x", { mode: M }),
    "node createWriteStream mode": () =>
      new Promise<void>((resolve, reject) => {
        const stream = fs.createWriteStream(at("y"), { mode: M });
        stream.on("error", reject);
        stream.end("x", () => resolve());
      }),
  };
  const outcomes: Record<string, string> = {};
  for (const [name, attempt] of Object.entries(attempts)) {
    try {
      await attempt();
      outcomes[name] = "done";
    } catch (e) {
      outcomes[name] = (e as Error).message;
    }
  }
  // A mode without the bits still works, the sticky bit included, and so does a copy of a plain program.
  Deno.writeTextFileSync(at("plain"), "x");
  Deno.chmodSync(at("plain"), 0o1755);
  Deno.copyFileSync(input.plainSource, at("plain-copy"));
  fs.copyFileSync(input.plainSource, at("plain-copy-node"));
  // The process's ffi grant on the C library, which installed the filter, is gone before the tool exists.
  let ffi = "opened";
  try {
    Deno.dlopen(input.libc, {}).close();
  } catch (e) {
    ffi = (e as Error).name;
  }
  try {
    process.dlopen({ exports: {} }, input.libc);
    ffi += ", process.dlopen opened";
  } catch (e) {
    ffi += ", " + (e as Error).name;
  }
  const mode = (name: string) => Deno.statSync(at(name)).mode! & 0o7777;
  return { outcomes, plain: [mode("plain"), mode("plain-copy"), mode("plain-copy-node")], ffi };
};
`;

function setIdFiles(root: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(root)) {
    const path = join(root, entry.name);
    const mode = Deno.lstatSync(path).mode ?? 0;
    if (mode & SET_ID) found.push(`${entry.name} ${(mode & 0o7777).toString(8)}`);
    if (entry.isDirectory) found.push(...setIdFiles(path).map((f) => `${entry.name}/${f}`));
  }
  return found;
}

/** Runs the planter in a fresh folder and checks that every attempt was refused and nothing carries the bits. */
async function assertNothingPlanted(runner: ToolRunner, libc: string): Promise<void> {
  const dir = new ToolDir();
  const out = join(dir.path, "out");
  const data = join(dir.path, "data");
  Deno.mkdirSync(out);
  Deno.mkdirSync(data);
  // A setuid program the tool may read (as /usr/bin/passwd is), to copy into its folder with its mode.
  const setuidSource = join(data, "program");
  Deno.writeTextFileSync(setuidSource, "#!/bin/sh\n");
  Deno.chmodSync(setuidSource, 0o6755);
  const plainSource = join(data, "plain-program");
  Deno.writeTextFileSync(plainSource, "#!/bin/sh\n");
  Deno.chmodSync(plainSource, 0o755);
  try {
    const tool = dir.tool("planter", PLANTER);
    const result = await runner.run(
      call(tool, { out, setuidSource, plainSource, libc }, {
        permissions: { read: true, write: [out] },
        timeoutMs: 30_000,
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    const { outcomes, plain, ffi } = result.output as {
      outcomes: Record<string, string>;
      plain: number[];
      ffi: string;
    };
    assert.deepEqual(setIdFiles(out), [], JSON.stringify(outcomes, null, 1));
    for (const [name, outcome] of Object.entries(outcomes)) {
      // Creation modes are masked (the file or folder is made without the bits); the rest are refused.
      if (MASKED.has(name)) continue;
      assert.match(outcome, /not permitted|EPERM/, `${name}: ${outcome}`);
    }
    assert.deepEqual(plain, [0o1755, 0o755, 0o755]);
    assert.equal(ffi, "NotCapable, NotCapable");
  } finally {
    dir.cleanup();
  }
}

Deno.test("rt33 S1: a write grant cannot make set-user-ID or set-group-ID files, by any entry point", async (t) => {
  const libc = kernelLimitsLibrary();
  assert.ok(libc, "the runtime's C library (the filter is Linux-only)");
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  const checkout = sandboxModules();
  const cache = await Deno.makeTempDir({ prefix: "compozy-set-id-cache-" });
  try {
    await t.step("from a checkout", () => assertNothingPlanted(runner, libc));
    await t.step("from a compiled binary's bundles (cli/sandbox_modules.json)", async () => {
      configureSandboxModules(
        await writeSandboxModules(JSON.parse(await Deno.readTextFile(BUNDLE_PATH)), cache),
      );
      await assertNothingPlanted(runner, libc);
    });
  } finally {
    configureSandboxModules(checkout);
    await runner.close();
    await Deno.remove(cache, { recursive: true });
  }
});
