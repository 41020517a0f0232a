import assert from "node:assert/strict";
import { CliError } from "./cli_error.ts";
import { parseJsonFlag } from "./json_flag.ts";

Deno.test("parseJsonFlag", async (t) => {
  await t.step("reads JSON", () => {
    assert.deepEqual(parseJsonFlag('{"id": 12, "big": "12345678901234567890"}', "--input"), {
      id: 12,
      big: "12345678901234567890",
    });
  });
  await t.step("an id past 2^53 is refused by its pointer, not sent rounded (…993 ran as …992)", () => {
    assert.throws(() => parseJsonFlag('{"id": 9007199254740993}', "--input"), (e: unknown) => {
      assert.ok(e instanceof CliError);
      assert.match(
        e.message,
        /^--input holds a number JSON cannot carry exactly: \/id is 9007199254740993, /,
      );
      assert.deepEqual(e.details, ['got: {"id": 9007199254740993}']);
      return true;
    });
  });
  await t.step("bad JSON names where it came from", () => {
    assert.throws(() => parseJsonFlag("{bad", "input.json"), /^CliError: input.json is not valid JSON: /);
  });
});
