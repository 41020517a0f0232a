import assert from "node:assert/strict";
import { WindowTimers } from "./window_timers.ts";

Deno.test("WindowTimers: each open window fires once, one opened while others fire too; a closed one never", async () => {
  const timers = new WindowTimers();
  const fired: string[] = [];
  const four = Promise.withResolvers<void>();
  const fire = (name: string) => () => {
    fired.push(name);
    if (fired.length === 4) four.resolve();
  };
  timers.open(60, fire("long"));
  // Ahead of "short" in the same length's list: once "short" fired, this one was passed over.
  const closed = timers.open(5, fire("closed"));
  timers.open(5, fire("short"));
  timers.open(30, () => {
    fire("middle")();
    timers.open(1, fire("opened while firing"));
  });
  timers.close(closed);
  const bound = setTimeout(() => four.reject(new Error(`fired in 10 s: ${fired}`)), 10_000);
  await four.promise.finally(() => clearTimeout(bound));
  assert.deepEqual(fired.sort(), ["long", "middle", "opened while firing", "short"]);
});
