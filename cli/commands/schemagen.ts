/**
 * `compozy schemagen`: writes the JSON Schemas of Compozy's YAML files into `schemas/`.
 *
 * @module
 */

import { join, relative, resolve } from "node:path";
import { generateSchemas, serializeSchema } from "../../pkg/schemagen/mod.ts";

export interface SchemagenOptions {
  /** Directory relative paths are resolved against (the repository root under `deno task schemagen`). */
  cwd: string;
  /** Output directory, relative to `cwd` unless absolute; default `<cwd>/schemas`. */
  out?: string;
}

/** Writes every schema file and returns the process exit code. */
export async function runSchemagen(opts: SchemagenOptions): Promise<number> {
  // `resolve`, not `join`: an absolute --out is where the user asked, not a folder inside the project.
  const outDir = resolve(opts.cwd, opts.out ?? "schemas");
  await Deno.mkdir(outDir, { recursive: true });
  for (const [file, schema] of Object.entries(generateSchemas())) {
    const path = join(outDir, file);
    await Deno.writeTextFile(path, serializeSchema(schema));
    console.log(`wrote ${relative(opts.cwd, path) || path}`);
  }
  return 0;
}
