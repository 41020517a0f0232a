/**
 * `compozy build`: validates the project, then writes one bundle (`<out>/<name>-<version>.compozy.json`)
 * with its YAML files and every tool module bundled by `deno bundle`.
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import { loadProject } from "../../engine/domain/project/mod.ts";
import { buildBundle, BUNDLE_SUFFIX, bundleDigest } from "../bundle.ts";
import { runValidate } from "./validate.ts";

export interface BuildOptions {
  cwd: string;
  out: string;
}

export async function runBuild(options: BuildOptions): Promise<number> {
  const cwd = resolve(options.cwd);
  const valid = await runValidate({ cwd });
  if (valid !== 0) return valid;
  const project = await loadProject(cwd);
  const bundle = await buildBundle(project);
  const outDir = resolve(cwd, options.out);
  await Deno.mkdir(outDir, { recursive: true });
  const name = `${project.config.name}-${project.config.version ?? "0.0.0"}${BUNDLE_SUFFIX}`;
  const path = join(outDir, name);
  const text = JSON.stringify(bundle);
  await Deno.writeTextFile(path, text);
  const files = Object.keys(bundle.files).length;
  console.log(
    `wrote ${relative(cwd, path)}: ${files} file(s), ${(text.length / 1024).toFixed(1)} KiB, ` +
      `sha256 ${bundleDigest(bundle).slice(0, 16)}…`,
  );
  return 0;
}
