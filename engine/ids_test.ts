import assert from "node:assert/strict";
import { uuidv7 } from "./ids.ts";

Deno.test("uuidv7", async (t) => {
  await t.step("RFC 9562 layout: version 7, variant 10, the time in the first 48 bits", () => {
    const id = uuidv7(0x0193f0a47b3c);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(id.slice(0, 13).replace("-", ""), "0193f0a47b3c");
  });

  await t.step("ids minted by this process sort in the order they were minted", () => {
    const now = Date.now() + 10_000;
    const ids = [
      ...Array.from({ length: 5000 }, () => uuidv7(now)), // the same millisecond: the counter orders them
      uuidv7(now - 5_000), // a clock that went back: still after the others
      uuidv7(now + 1),
    ];
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
  });
});
