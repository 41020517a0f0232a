import assert from "node:assert/strict";
import { catchUpEnd, type EndCatchUpState, StateBehindHistoryError, StoredEnds } from "./end_catch_up.ts";

/** A state whose document shows an end from the `shownFrom`-th read on (Infinity: never), and what was asked. */
function state(shownFrom: number, options: { replicated?: boolean; historyEnded?: boolean } = {}) {
  const asked = { reads: 0, repairs: 0 };
  let repaired = false;
  const s: EndCatchUpState = {
    ends: new StoredEnds(),
    showsEnd: () => Promise.resolve(++asked.reads >= shownFrom || repaired),
    writeEndFromHistory: () => {
      asked.repairs++;
      repaired = options.historyEnded !== false;
      return Promise.resolve(repaired);
    },
    replicated: options.replicated ?? false,
  };
  return { s, asked };
}

Deno.test("catchUpEnd", async (t) => {
  await t.step("an end this engine stored on a bucket of one replica needs no read", async () => {
    const { s, asked } = state(Infinity);
    s.ends.stored("e");
    await catchUpEnd(s, "e", "e", 300);
    assert.deepEqual(asked, { reads: 0, repairs: 0 });
  });

  await t.step(
    "on a replicated bucket it is read back: overwritten, it is written from the history",
    async () => {
      const { s, asked } = state(Infinity, { replicated: true });
      s.ends.stored("e");
      await catchUpEnd(s, "e", "e", 300);
      assert.equal(asked.repairs, 1);
    },
  );

  await t.step("an end stored elsewhere is read until it shows, and not written", async () => {
    const { s, asked } = state(2);
    await catchUpEnd(s, "e", "e", 5_000);
    assert.deepEqual(asked, { reads: 2, repairs: 0 });
  });

  await t.step("the end heard from this engine's fold while waiting ends the wait", async () => {
    const { s, asked } = state(Infinity);
    setTimeout(() => s.ends.stored("e"), 10);
    await catchUpEnd(s, "e", "e", 5_000);
    assert.deepEqual(asked, { reads: 0, repairs: 0 });
  });

  await t.step("a history read with no end is an error naming the execution, not a success", async () => {
    const { s } = state(Infinity, { historyEnded: false });
    await assert.rejects(catchUpEnd(s, "e-1", "e-1", 100), (e) => {
      assert.ok(e instanceof StateBehindHistoryError);
      assert.match(e.message, /execution e-1 .*holds no end/);
      return true;
    });
  });
});
