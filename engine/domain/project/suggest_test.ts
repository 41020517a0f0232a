import assert from "node:assert/strict";
import { closest, didYouMean } from "./suggest.ts";

Deno.test("closest suggests likely typos only", () => {
  assert.equal(closest("timout", ["timeout", "retry"]), "timeout");
  assert.equal(closest("paralel", ["parallel", "router"]), "parallel");
  assert.equal(closest("xyz", ["timeout", "retry"]), undefined);
  assert.equal(didYouMean("Timeout", ["timeout"]), ' (did you mean "timeout"?)');
  assert.equal(didYouMean("abc", []), "");
});
