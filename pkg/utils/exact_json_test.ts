import assert from "node:assert/strict";
import { InexactJsonNumberError, parseExactJson } from "./exact_json.ts";

function refusal(text: string): InexactJsonNumberError {
  try {
    parseExactJson(text);
  } catch (e) {
    if (e instanceof InexactJsonNumberError) return e;
    throw e;
  }
  assert.fail(`${text} was accepted`);
}

Deno.test("parseExactJson", async (t) => {
  await t.step("reads what a double holds as JSON.parse does", () => {
    const text =
      '{"a":[1,-0.5,1e23,9007199254740992,-9007199254740992,0.12345678901234567],"b":"12345678901234567890"}';
    assert.deepEqual(parseExactJson(text), JSON.parse(text));
  });
  await t.step("refuses an integer a double rounds, naming the first by its pointer", () => {
    const e = refusal('{"x":[9007199254740992,{"a/b~c":9007199254740993}],"y":12345678901234567890}');
    assert.equal(e.pointer, "/x/1/a~1b~0c");
    assert.equal(e.source, "9007199254740993");
    assert.equal(e.problem, "an integer past ±2^53, which a double stores as 9007199254740992");
    assert.equal(refusal("-12345678901234567890").pointer, "");
  });
  await t.step("refuses a number out of a double's range", () => {
    const e = refusal('{"n":[1,-1e400]}');
    assert.equal(e.pointer, "/n/1");
    assert.equal(e.problem, "a number outside the range of a double");
  });
  await t.step("a syntax error stays a SyntaxError", () => {
    assert.throws(() => parseExactJson("{1e400"), SyntaxError);
  });
});
