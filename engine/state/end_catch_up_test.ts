import assert from "node:assert/strict";
import {
  catchUpEnd,
  type EndCatchUpState,
  RepairTurns,
  StateBehindHistoryError,
  StoredEnds,
} from "./end_catch_up.ts";

/** A state whose document shows an end from the `shownFrom`-th read on (Infinity: never), and what was asked. */
function state(shownFrom: number, options: { replicated?: boolean; historyEnded?: boolean } = {}) {
  const asked = { reads: 0, repairs: 0 };
  let repaired = false;
  const s: EndCatchUpState = {
    ends: new StoredEnds(),
    repairs: new RepairTurns(),
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

  await t.step("ends are written from the history a few at a time; one shown meanwhile is not", async () => {
    const repairs = new RepairTurns(2);
    let running = 0;
    let most = 0;
    let writes = 0;
    const shown = new Set<string>();
    const s: EndCatchUpState = {
      ends: new StoredEnds(),
      repairs,
      showsEnd: (id) => Promise.resolve(shown.has(id)),
      writeEndFromHistory: async (id) => {
        writes++;
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        shown.add(id);
        // The fold caught up meanwhile: the end of `e-4`, waiting for its turn, shows.
        shown.add("e-4");
        return true;
      },
      replicated: false,
    };
    await Promise.all(["e-1", "e-2", "e-3", "e-4"].map((id) => catchUpEnd(s, id, id, 10)));
    assert.equal(most, 2);
    assert.equal(writes, 3);
  });
});
