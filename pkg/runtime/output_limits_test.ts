import assert from "node:assert/strict";
import { busOutputLimit, jsonTooDeep, NATS_HEADROOM_BYTES } from "./output_limits.ts";

Deno.test("jsonTooDeep counts nesting outside strings only", () => {
  const cases: [string, number, boolean][] = [
    ['{"a":["]]]"]}', 2, false],
    ["[[[1]]]", 2, true],
    ["[[[1]]]", 3, false],
    ['["\\\\"]', 1, false],
    ['["\\"[[[[", [[1]]]', 2, true],
    ['["\\\\\\"[[["]', 1, false],
    ['[{"a":{"b":[]}}]', 4, false],
    ['[{"a":{"b":[]}}]', 3, true],
    ['"[[[[[[', 1, false],
    ["[".repeat(300_000) + "]".repeat(300_000), 64, true],
  ];
  for (const [text, depth, expected] of cases) {
    assert.equal(jsonTooDeep(text, depth), expected, `${text.slice(0, 40)} at ${depth}`);
  }
});

Deno.test("busOutputLimit leaves headroom, and falls back before the server has said", () => {
  assert.equal(busOutputLimit(1024 * 1024, 4), 1024 * 1024 - NATS_HEADROOM_BYTES);
  assert.equal(busOutputLimit(undefined, 7), 7);
  assert.equal(busOutputLimit(100, 7), 7);
});
