/**
 * Bundles the sandbox's own modules into `cli/sandbox_modules.json`: the host thread
 * (pkg/runtime/worker_host.ts) and the tool worker's setup (pkg/runtime/tool_worker.ts), each with what it
 * imports, by `deno bundle` (offline), and SES's lockdown file as it is. A compiled `compozy` binary embeds
 * the JSON and writes these files to a cache folder at start (cli/sandbox_cache.ts), since the `deno` that
 * runs sandboxes cannot read files inside the binary.
 *
 * Usage: `deno task sandbox-bundle` after changing worker_host.ts, tool_worker.ts or anything they import; a
 * test fails while the committed file differs from a fresh build.
 */
import { fileURLToPath } from "node:url";
import { type SandboxBundle, sha256Hex } from "../cli/sandbox_cache.ts";

const REPO = new URL("../", import.meta.url);
export const BUNDLE_PATH = fileURLToPath(new URL("cli/sandbox_modules.json", REPO));

async function denoBundle(entry: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", "--format", "esm", entry],
    // The bundle names its sources relative to the working directory: the repository, on every machine.
    cwd: fileURLToPath(REPO),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno bundle ${entry} failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** A fresh build of the sandbox's modules. */
export async function buildSandboxBundle(): Promise<SandboxBundle> {
  const sources = {
    "worker_host.js": await denoBundle("pkg/runtime/worker_host.ts"),
    "tool_worker.js": await denoBundle("pkg/runtime/tool_worker.ts"),
    "lockdown.mjs": await Deno.readTextFile(new URL("./dist/lockdown.mjs", import.meta.resolve("ses"))),
  };
  const modules = {} as SandboxBundle["modules"];
  for (const [name, source] of Object.entries(sources) as [keyof typeof sources, string][]) {
    modules[name] = { sha256: await sha256Hex(source), source };
  }
  return { generated: "by `deno task sandbox-bundle` (scripts/sandbox_bundle.ts); do not edit", modules };
}

/** The text written to sandbox_modules.json (the same bytes `deno fmt` leaves alone). */
export function serializeSandboxBundle(bundle: SandboxBundle): string {
  return JSON.stringify(bundle, null, 2) + "\n";
}

if (import.meta.main) {
  const bundle = await buildSandboxBundle();
  await Deno.writeTextFile(BUNDLE_PATH, serializeSandboxBundle(bundle));
  const sizes = Object.entries(bundle.modules).map(([name, m]) => `${name} ${m.source.length} B`);
  console.log(`wrote ${BUNDLE_PATH}: ${sizes.join(", ")}`);
}
