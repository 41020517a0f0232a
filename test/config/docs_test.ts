/** docs/yaml-reference.md keeps up with the schemas: every field name of every schema appears in it. */

import assert from "node:assert/strict";
import { generateSchemas } from "../../pkg/schemagen/mod.ts";

const DOC = new URL("../../docs/yaml-reference.md", import.meta.url);

function fieldNames(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) node.forEach((item) => fieldNames(item, out));
  else if (typeof node === "object" && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      if (key === "examples") continue; // sample values, not fields
      if (key === "properties") Object.keys(value as object).forEach((name) => out.add(name));
      fieldNames(value, out);
    }
  }
  return out;
}

Deno.test("docs/yaml-reference.md names every schema field", async () => {
  const doc = await Deno.readTextFile(DOC);
  const missing = [...fieldNames(generateSchemas())].filter((name) => !doc.includes(`\`${name}\``));
  assert.deepEqual(missing, [], `fields missing from docs/yaml-reference.md: ${missing.join(", ")}`);
});
