import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { ConfigError, formatDiagnostic, loadProject } from "./mod.ts";

const TOOL = "export default () => ({});\n";

async function project(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-perms-" });
  files = { "wf.yaml": "id: wf\ntasks: [{ id: nap, type: sleep, duration: 1s }]\n", ...files };
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(join(dir, name)), { recursive: true });
    await Deno.writeTextFile(join(dir, name), text);
  }
  return dir;
}

/** The project's diagnostics as `file:line:col: path: message`, errors and warnings. */
async function diagnosticsOf(dir: string): Promise<string[]> {
  try {
    const loaded = await loadProject(dir, { processEnv: {} });
    return loaded.warnings.map((d) => formatDiagnostic(d, dir));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.diagnostics.map((d) => formatDiagnostic(d, dir));
  }
}

function toolsYaml(tools: string[]): string {
  return ["name: demo", "workflows: [{ source: ./wf.yaml }]", "tools:", ...tools.map((t) => `  - ${t}`)].join(
    "\n",
  ) + "\n";
}

Deno.test("tool permissions are checked at validate time, at the grant's line", async (t) => {
  await t.step("a write grant covering a sibling tool module is refused", async () => {
    const dir = await project({
      "compozy.yaml": toolsYaml([
        '{ id: writer, execute: ./tools/writer.ts, permissions: { write: ["."] } }',
        "{ id: payments, execute: ./tools/payments.ts, permissions: { env: [PAYMENTS_KEY] } }",
      ]),
      "tools/writer.ts": TOOL,
      "tools/payments.ts": `import { x } from "./lib/x.ts";\nexport default () => x;\n`,
      "tools/lib/x.ts": "export const x = 1;\n",
    });
    const found = await diagnosticsOf(dir);
    assert.ok(
      found.some((d) => /^compozy\.yaml:4:\d+: .*write.*covers the tool module/.test(d)),
      found.join("\n"),
    );
    await Deno.writeTextFile(
      join(dir, "compozy.yaml"),
      toolsYaml([
        "{ id: writer, execute: ./tools/writer.ts, permissions: { write: [./lib] } }",
        "{ id: payments, execute: ./tools/payments.ts }",
      ]),
    );
    assert.ok(
      (await diagnosticsOf(dir)).some((d) => /covers the tool module lib\/x\.ts/.test(d)),
      "a module imported by a tool counts as a tool module",
    );
    await Deno.remove(dir, { recursive: true });
  });

  await t.step("write: true is refused; read: true is a warning", async () => {
    const dir = await project({
      "compozy.yaml": toolsYaml([
        "{ id: w, execute: ./tools/w.ts, permissions: { write: true } }",
        "{ id: r, execute: ./tools/r.ts, permissions: { read: true } }",
      ]),
      "tools/w.ts": TOOL,
      "tools/r.ts": TOOL,
    });
    const found = await diagnosticsOf(dir);
    assert.ok(found.some((d) => /^compozy\.yaml:4:\d+: .*write: true would let/.test(d)), found.join("\n"));
    assert.ok(found.some((d) => /^compozy\.yaml:5:\d+: .*warning: read: true/.test(d)), found.join("\n"));
    await Deno.remove(dir, { recursive: true });
  });

  await t.step("grants covering .compozy/, .env or compozy.yaml are refused", async () => {
    const dir = await project({
      "compozy.yaml": toolsYaml([
        '{ id: root_reader, execute: ./root.ts, permissions: { read: ["."] } }',
        "{ id: store_writer, execute: ./tools/s.ts, permissions: { write: [../.compozy/nats] } }",
        "{ id: env_reader, execute: ./tools/e.ts, permissions: { read: [../data, ../.env] } }",
      ]),
      ".env": "SECRET=1\n",
      "root.ts": TOOL,
      "tools/s.ts": TOOL,
      "tools/e.ts": TOOL,
      "data/a.txt": "a",
    });
    const found = await diagnosticsOf(dir);
    assert.ok(found.some((d) => /^compozy\.yaml:4:\d+: .*never granted/.test(d)), found.join("\n"));
    assert.ok(
      found.some((d) => /^compozy\.yaml:5:\d+: .*write\[0\]: .*never granted/.test(d)),
      found.join("\n"),
    );
    assert.ok(
      found.some((d) => /^compozy\.yaml:6:\d+: .*read\[1\]: .*never granted/.test(d)),
      found.join("\n"),
    );
    await Deno.remove(dir, { recursive: true });
  });

  await t.step("a symlink leading out of a granted folder is refused; plain folders pass", async () => {
    const dir = await project({
      "compozy.yaml": toolsYaml([
        "{ id: reader, execute: ./tools/r.ts, permissions: { read: [./data], write: [./out] } }",
      ]),
      "tools/r.ts": TOOL,
      "tools/data/a.txt": "a",
      "tools/out/.keep": "",
    });
    assert.deepEqual(await diagnosticsOf(dir), []);
    await Deno.symlink("/etc", join(dir, "tools/data/etc_link"));
    const found = await diagnosticsOf(dir);
    assert.ok(
      found.some((d) => /^compozy\.yaml:4:\d+: .*symlink .*etc_link.* points outside/.test(d)),
      found.join("\n"),
    );
    await Deno.remove(dir, { recursive: true });
  });
});
