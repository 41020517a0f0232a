import assert from "node:assert/strict";
import { closest, didYouMean } from "./suggest.ts";

Deno.test("closest suggests likely typos only", () => {
  assert.equal(closest("timout", ["timeout", "retry"]), "timeout");
  assert.equal(closest("paralel", ["parallel", "router"]), "parallel");
  assert.equal(closest("xyz", ["timeout", "retry"]), undefined);
  // Two neighbours swapped is one typo: a four-letter word allows one edit.
  assert.equal(closest("wiht", ["with", "use"]), "with");
  assert.equal(closest("retyr", ["retry", "timeout"]), "retry");
  assert.equal(closest("ab", ["ba"]), "ba");
  assert.equal(closest("wthi", ["with"]), undefined);
  assert.equal(didYouMean("Timeout", ["timeout"]), ' (did you mean "timeout"?)');
  assert.equal(didYouMean("abc", []), "");
});
