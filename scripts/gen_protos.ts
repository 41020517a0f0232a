/**
 * Regenerates the Protobuf-ES code in `pkg/pb/` from `proto/`, offline: buf and protoc-gen-es both come from
 * npm. The output is formatted with `deno fmt` so the generated files pass `deno fmt --check`.
 *
 * Usage: `deno task protos` (writes pkg/pb/), or `deno run -A scripts/gen_protos.ts --out DIR` (writes
 * DIR/pkg/pb/, used by the staleness test).
 */
import { generateProtos } from "./protos.ts";

if (import.meta.main) {
  const outIndex = Deno.args.indexOf("--out");
  const outDir = outIndex >= 0 ? Deno.args[outIndex + 1] : undefined;
  const written = await generateProtos(outDir);
  console.log(`generated ${written.length} files in ${outDir ?? "."}/pkg/pb`);
}
