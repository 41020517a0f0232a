/**
 * Red team 7 (/work/wt/redteam7.findings.md) R6 and R3, with real sandbox processes: every file whose name
 * starts with `.env` (an editor's `.env~`, direnv's `.envrc`, `.env-prod`), and the project's `env_file` under
 * any name (`secrets.env`), are as protected as `.env`: denied to `read: true`, refused as a list entry at
 * start and by `compozy validate`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkProject, formatDiagnostic } from "../../engine/domain/project/mod.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call } from "./_helpers.ts";

/** Reads each path; returns its text or the error's name. */
const READER = `export default async (input: { paths: string[] }) => {
  const out: Record<string, string> = {};
  for (const path of input.paths) {
    try {
      out[path] = await Deno.readTextFile(path);
    } catch (e) {
      out[path] = (e as Error).name;
    }
  }
  return out;
};`;

const ENV_NAMES = [".env", ".env~", ".envrc", ".env-prod", ".env_old", ".env.local"];

/** A project with its secrets under every `.env*` name, an `env_file` named `secrets.env`, and a reader tool. */
async function project(): Promise<{ root: string; tool: string }> {
  const root = await Deno.makeTempDir({ prefix: "compozy-rt7-env-" });
  await Deno.mkdir(join(root, "tools"));
  await Deno.writeTextFile(
    join(root, "compozy.yaml"),
    "name: envs\nversion: 0.1.0\nenv_file: secrets.env\nworkflows:\n  - source: ./wf.yaml\n",
  );
  for (const name of [...ENV_NAMES, "secrets.env"]) {
    await Deno.writeTextFile(join(root, name), `OPENAI_API_KEY=sk-from-${name}\n`);
  }
  await Deno.writeTextFile(join(root, "public.txt"), "public\n");
  const tool = join(root, "tools/rd.ts");
  await Deno.writeTextFile(tool, READER);
  return { root, tool };
}

Deno.test("red team 7 R6/R3: read: true reads no .env* file and not the env_file", async () => {
  const { root, tool } = await project();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const secrets = [...ENV_NAMES, "secrets.env"].map((name) => join(root, name));
    const paths = [...secrets, join(root, "public.txt")];
    const result = await runner.run(
      call(tool, { paths }, { permissions: { read: true }, timeoutMs: 60_000 }),
    );
    assert.ok(result.ok, result.ok ? "" : result.failure.message);
    // Before: .env~, .envrc, .env-prod, .env_old and secrets.env came back with their keys.
    assert.deepEqual(result.output, {
      ...Object.fromEntries(secrets.map((path) => [path, "NotCapable"])),
      [join(root, "public.txt")]: "public\n",
    });
  } finally {
    await runner.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("red team 7 R6/R3: a list entry naming a .env* file or the env_file is refused at start", async () => {
  const { root, tool } = await project();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    for (const name of [".env~", ".envrc", ".env-prod", "secrets.env"]) {
      const entry = join(root, name);
      const result = await runner.run(
        call(tool, { paths: [entry] }, { permissions: { read: [entry] }, timeoutMs: 60_000 }),
      );
      // Before: granted, and the tool returned the file's keys.
      assert.ok(!result.ok, `${name}: ${JSON.stringify(result.ok && result.output)}`);
      assert.equal(result.failure.code, "tool_permission_denied");
      assert.match(
        result.failure.message,
        new RegExp(`covers ${entry.replaceAll(".", "\\.")}.*never granted`),
      );
    }
  } finally {
    await runner.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("red team 7 R6/R3: compozy validate refuses such entries and says read: true spares the env_file", async () => {
  const { root } = await project();
  try {
    await Deno.writeTextFile(
      join(root, "wf.yaml"),
      `id: wf
tools:
  - id: all
    execute: ./tools/rd.ts
    permissions: { read: true }
  - id: backup
    execute: ./tools/rd.ts
    permissions: { read: ["../.env~"] }
  - id: direnv
    execute: ./tools/rd.ts
    permissions: { read: ["../.envrc"] }
tasks:
  - { id: a, use: tool(id=all), with: { paths: [] } }
  - { id: b, use: tool(id=backup), with: { paths: [] } }
  - { id: c, use: tool(id=direnv), with: { paths: [] } }
`,
    );
    const found = (await checkProject(root, { processEnv: {} })).map((d) => formatDiagnostic(d, root));
    // Before: neither entry was reported, and the warning named only .env among the secrets.
    for (const line of [8, 11]) {
      const at = new RegExp(`^wf\\.yaml:${line}:\\d+: .*read.*never granted`);
      assert.ok(found.some((d) => at.test(d)), `line ${line}:\n${found.join("\n")}`);
    }
    const warning = found.find((d) => /^wf\.yaml:5:\d+: .*warning: read: true/.test(d));
    assert.ok(warning, found.join("\n"));
    assert.match(
      warning,
      /except the project's \.compozy\/, its \.env\* files, its env_file \(secrets\.env\)/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("review R-S5: an env_file set through a YAML merge key is as protected as one set plainly", async () => {
  const { root, tool } = await project();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    // The loader reads merge keys (CONFIG.md allows anchors and aliases), so this project's env_file is
    // secrets.env; the runtime's own read of compozy.yaml must find the same file.
    await Deno.writeTextFile(
      join(root, "compozy.yaml"),
      "name: envs\nversion: 0.1.0\nenv: &shared\n  env_file: secrets.env\n<<: *shared\n" +
        "workflows:\n  - source: ./wf.yaml\n",
    );
    const secret = join(root, "secrets.env");
    const result = await runner.run(
      call(tool, { paths: [secret] }, { permissions: { read: true }, timeoutMs: 60_000 }),
    );
    assert.ok(result.ok, result.ok ? "" : result.failure.message);
    // Before: the runtime parsed compozy.yaml without merge keys and the tool read the env_file's keys.
    assert.deepEqual(result.output, { [secret]: "NotCapable" });
  } finally {
    await runner.close();
    await Deno.remove(root, { recursive: true });
  }
});
