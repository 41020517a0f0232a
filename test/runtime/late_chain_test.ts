/**
 * An async chain an ended call left behind never runs during a later call of the same warm sandbox.
 * Timers, fetches and sockets are cancelled at the return, but a chain through other asynchronous APIs
 * (`crypto.subtle`, a `MessageChannel`, `Atomics.waitAsync`, a promise the module keeps, a
 * `FinalizationRegistry`'s cleanup) can only be
 * stopped when it next runs: it must not get to observe or change the next call's input, logs or output.
 * Real sandbox processes; each left-over turn records what it saw in module state, which the next call
 * returns.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/**
 * The tool: `leave` starts a chain of the named kind and returns; `read` stores its input where the chain
 * looks, lets the event loop turn for a while (timers of its own), and returns what left-over turns saw
 * and logged while it ran.
 */
const TOOL = `
let current: unknown = undefined;
let seen: unknown[] = [];
let pending: ((v: unknown) => void) | undefined;
const turn = () => {
  if (current !== undefined) {
    seen.push(current);
    console.log("late turn saw", JSON.stringify(current));
  }
};
const chains: Record<string, () => void> = {
  digest: () => {
    const again = (): unknown => crypto.subtle.digest("SHA-256", new Uint8Array(8)).then(() => { turn(); again(); });
    again();
  },
  channel: () => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => { turn(); port2.postMessage(1); };
    port2.onmessage = () => port1.postMessage(1);
    port1.postMessage(1);
  },
  waitAsync: () => {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    (Atomics as any).waitAsync(cell, 0, 0, 150).value.then(turn);
  },
  // A reaction on a promise the module keeps, which the next call's own code resolves.
  kept: () => {
    new Promise((resolve) => (pending = resolve)).then(turn);
  },
  // Cleanup callbacks, which V8 runs after a collection (the next call's allocations cause one).
  // The targets are let go by the next call, so that they are collected while it runs.
  finalizer: () => {
    registry = new FinalizationRegistry(turn);
    targets = Array.from({ length: 100 }, (_, i) => ({ big: new Array(1000).fill(i) }));
    targets.forEach((target, i) => registry!.register(target, i));
  },
};
let registry: FinalizationRegistry<number> | undefined;
let targets: object[] = [];
if (typeof unowned === "function") chains.unowned = unowned;
export default async (input: { mode: string; kind?: string; secret?: string }) => {
  if (input.mode === "leave") {
    chains[input.kind!]();
    return "left";
  }
  current = input;
  seen = [];
  pending?.(1);
  targets = [];
  for (let i = 0; i < 10; i++) {
    for (let j = 0; j < 10; j++) new Array(100_000).fill(j);
    await new Promise((r) => setTimeout(r, 30));
  }
  const saw = seen;
  current = undefined;
  return saw;
};
`;

/**
 * Prepended to {@linkcode TOOL} for the step "unowned" (Node's layer, which the other steps do without): a
 * reaction registered in no call's context, with the sandbox's own `AsyncLocalStorage`, which a call took by
 * replacing `AsyncLocalStorage.prototype.getStore` and `run` while the sandbox read its context (the log
 * line). Code of no call is the sandbox's, let run at any time (outside break attempt brk44).
 */
const UNOWNED = `
import { AsyncLocalStorage } from "node:async_hooks";
const unowned = () => {
  const proto = AsyncLocalStorage.prototype as any;
  const { getStore, run } = proto;
  let sandbox: any;
  proto.getStore = function (this: unknown) { sandbox ??= this; return getStore.call(this); };
  proto.run = function (this: unknown, ...args: unknown[]) { sandbox ??= this; return run.apply(this, args); };
  console.log("the sandbox reads its context");
  proto.getStore = getStore;
  proto.run = run;
  const leave = () => new Promise((resolve) => (pending = resolve)).then(turn);
  if (sandbox !== undefined) sandbox.run(undefined, leave);
  else leave();
};
`;

Deno.test("a chain left by an ended call never runs during the next call", async (t) => {
  const dir = new ToolDir();
  // Cold starts take seconds on a loaded machine; nothing here is about time.
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    for (const kind of ["digest", "channel", "waitAsync", "kept", "finalizer", "unowned"]) {
      await t.step(kind, async () => {
        // A tool file per kind: each its own pool key, so no chain of another step is around.
        const tool = dir.tool(`late_${kind}`, kind === "unowned" ? UNOWNED + TOOL : TOOL);
        // Cold starts take seconds on a loaded machine; no call here is about time.
        const left = await runner.run(call(tool, { mode: "leave", kind }, { timeoutMs: 60_000 }));
        assert.ok(left.ok, JSON.stringify(left));
        const logs: string[] = [];
        const next = await runner.run(
          call(tool, { mode: "read", secret: `input of the next call (${kind})` }, {
            onLog: (e) => logs.push(e.message),
            // It may run again in a fresh process.
            timeoutMs: 60_000,
          }),
        );
        assert.ok(next.ok, `the next call is not blamed: ${JSON.stringify(next)}`);
        assert.deepEqual(next.output, [], "left-over code saw the next call's input while it ran");
        assert.deepEqual(logs, [], "left-over code logged into the next call");
      });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
