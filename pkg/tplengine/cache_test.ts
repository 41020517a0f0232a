import assert from "node:assert/strict";
import { LruCache } from "./cache.ts";

Deno.test("LruCache", async (t) => {
  await t.step("evicts the least recently used entry past maxEntries", () => {
    const cache = new LruCache<number>(2, 1_000);
    cache.set("a", 1);
    cache.set("b", 2);
    assert.equal(cache.get("a"), 1); // "b" is now the oldest
    cache.set("c", 3);
    assert.equal(cache.get("b"), undefined);
    assert.equal(cache.get("a"), 1);
    assert.equal(cache.get("c"), 3);
    assert.equal(cache.size, 2);
  });
  await t.step("evicts past maxChars, counting key lengths", () => {
    const cache = new LruCache<number>(100, 10);
    cache.set("aaaa", 1);
    cache.set("bbbb", 2);
    cache.set("cccc", 3);
    assert.equal(cache.get("aaaa"), undefined);
    assert.equal(cache.size, 2);
  });
  await t.step("replacing a key does not count it twice", () => {
    const cache = new LruCache<number>(100, 8);
    cache.set("aaaa", 1);
    cache.set("aaaa", 2);
    cache.set("bbbb", 3);
    assert.equal(cache.get("aaaa"), 2);
    assert.equal(cache.size, 2);
  });
  await t.step("never stores a key longer than maxChars", () => {
    const cache = new LruCache<number>(100, 3);
    cache.set("abcd", 1);
    assert.equal(cache.size, 0);
  });
  await t.step("rejects bad limits up front", () => {
    assert.throws(() => new LruCache(0, 1), /'maxEntries' must be a positive integer: current value is 0/);
    assert.throws(() => new LruCache(1, 1.5), /'maxChars' must be a positive integer: current value is 1.5/);
  });
});
