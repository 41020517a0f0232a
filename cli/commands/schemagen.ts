/**
 * `compozy schemagen`: writes the JSON Schemas of Compozy's YAML files into `schemas/`.
 *
 * @module
 */

import { join, relative } from "node:path";
import { generateSchemas, serializeSchema } from "../../pkg/schemagen/mod.ts";

export interface SchemagenOptions {
  /** Directory relative paths are resolved against (the repository root under `deno task schemagen`). */
  cwd: string;
  /** Output directory; default `<cwd>/schemas`. */
  out?: string;
}

/** Writes every schema file and returns the process exit code. */
export async function runSchemagen(opts: SchemagenOptions): Promise<number> {
  const outDir = opts.out ? join(opts.cwd, opts.out) : join(opts.cwd, "schemas");
  await Deno.mkdir(outDir, { recursive: true });
  for (const [file, schema] of Object.entries(generateSchemas())) {
    const path = join(outDir, file);
    await Deno.writeTextFile(path, serializeSchema(schema));
    console.log(`wrote ${relative(opts.cwd, path) || path}`);
  }
  return 0;
}
