/**
 * A tool's call may keep only a few threads runnable at once (outside break attempt brk40). Deno runs
 * `crypto.subtle`, `node:crypto`'s asynchronous functions and file work on a pool of up to 32 blocking
 * threads, with no permission: a tool granted nothing started 64 `crypto.subtle.deriveBits` and its process
 * ran 32 threads at once until its time limit, which the scheduler shares the CPU by, so the runtime's thread
 * got a 33rd of what a plain loop leaves it (its event loop stalled 1.1–3.5 s at a time instead of ~0.1 s).
 * The memory watch now counts a running process's runnable threads (V8's helpers aside) and kills one that
 * keeps more than `maxRunnableThreads` for a second: `tool_cpu_exceeded`. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/** Starts `n` key derivations at once, each far longer than the test waits, or one at a time with `serial`. */
const DERIVE = `export default async (input: { n: number; iterations: number; serial?: boolean }) => {
  const key = await crypto.subtle.importKey("raw", new Uint8Array(16), "PBKDF2", false, ["deriveBits"]);
  const derive = () => crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(8), iterations: input.iterations }, key, 256);
  const started = performance.now();
  if (input.serial) for (let i = 0; i < input.n; i++) await derive();
  else await Promise.all(Array.from({ length: input.n }, derive));
  return Math.round(performance.now() - started);
};
`;

/** The same through node:crypto's pbkdf2, which Deno runs on the same blocking threads. */
const NODE_PBKDF2 = `import { pbkdf2 } from "node:crypto";
export default (input: { n: number; iterations: number }) =>
  Promise.all(Array.from({ length: input.n }, () =>
    new Promise((resolve, reject) =>
      pbkdf2("p", "s", input.iterations, 32, "sha256", (e, k) => e ? reject(e) : resolve(k.length)))));
`;

/**
 * Returns at once, leaving a digest of 64 MiB on a blocking thread whose continuation, after the call ended,
 * starts `n` long derivations; with `ms`, busy-loops that long first.
 */
const DETACH = `export default async (input: { n: number; ms?: number }) => {
  const key = await crypto.subtle.importKey("raw", new Uint8Array(16), "PBKDF2", false, ["deriveBits"]);
  const params = { name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(8), iterations: 50_000_000 };
  if (input.n > 0) {
    crypto.subtle.digest("SHA-256", new Uint8Array(64 * 1024 * 1024)).then(() => {
      for (let i = 0; i < input.n; i++) crypto.subtle.deriveBits(params, key, 256).catch(() => {});
    });
  }
  const end = Date.now() + (input.ms ?? 0);
  while (Date.now() < end) { /* busy */ }
  return "returned";
};
`;

/**
 * Bursts of 32 derivations, each burst sized (by a calibration burst) to last about \`burstMs\`, with
 * \`restMs\` between them: under a second each, so that no second passes with every count over the bound.
 */
const BURSTS = `export default async (input: { bursts: number; burstMs: number; restMs: number }) => {
  const key = await crypto.subtle.importKey("raw", new Uint8Array(16), "PBKDF2", false, ["deriveBits"]);
  const burst = async (iterations: number) => {
    const started = performance.now();
    await Promise.all(Array.from({ length: 32 }, () => crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(8), iterations }, key, 256)));
    return performance.now() - started;
  };
  let iterations = 20_000;
  const took: number[] = [];
  for (let b = 0; b < input.bursts; b++) {
    const ms = await burst(iterations);
    took.push(Math.round(ms));
    iterations = Math.max(1_000, Math.round(iterations * input.burstMs / Math.max(ms, 1)));
    await new Promise((resolve) => setTimeout(resolve, input.restMs));
  }
  return took;
};
`;

const SPIN = `export default (input: { ms: number }) => {
  const end = Date.now() + input.ms;
  let n = 0;
  while (Date.now() < end) n++;
  return n > 0;
};
`;

Deno.test({
  name: "brk40: a call keeping 32 blocking threads busy is killed tool_cpu_exceeded, not left to its limit",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1 });
    try {
      const derive = dir.tool("derive", DERIVE);
      const nodeDerive = dir.tool("node_derive", NODE_PBKDF2);
      for (const tool of [derive, nodeDerive]) {
        const started = performance.now();
        const result = await runner.run(call(tool, { n: 64, iterations: 50_000_000 }, { timeoutMs: 20_000 }));
        const took = performance.now() - started;
        // Before: the call held 32 threads busy until its 20 s limit (`tool_timeout`, retryable: again).
        assert.equal(result.ok, false, JSON.stringify(result));
        if (result.ok) return;
        assert.equal(result.failure.code, "tool_cpu_exceeded", JSON.stringify(result.failure));
        assert.equal(result.failure.retryable, false);
        assert.match(result.failure.message, /threads runnable at once/);
        assert.ok(took < 12_000, `killed after ${Math.round(took)} ms`);
        // The tool's next call runs in a fresh process.
        const next = await runner.run(call(derive, { n: 1, iterations: 1 }));
        assert.equal(next.ok, true, JSON.stringify(next));
      }
    } finally {
      await runner.close();
      dir.cleanup();
    }
  },
});

Deno.test({
  name: "brk40: a busy loop and derivations one at a time keep their calls",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1 });
    try {
      const spin = await runner.run(call(dir.tool("spin", SPIN), { ms: 2_500 }, { timeoutMs: 20_000 }));
      assert.equal(spin.ok, true, JSON.stringify(spin));
      // Two at a time, for well over the watch's window: within the bound (worker, host, two blocking threads).
      const derive = dir.tool("derive", DERIVE);
      const pair = await runner.run(call(derive, { n: 2, iterations: 3_000_000 }, { timeoutMs: 30_000 }));
      assert.equal(pair.ok, true, JSON.stringify(pair));
      const serial = await runner.run(
        call(derive, { n: 4, iterations: 1_000_000, serial: true }, { timeoutMs: 30_000 }),
      );
      assert.equal(serial.ok, true, JSON.stringify(serial));
    } finally {
      await runner.close();
      dir.cleanup();
    }
  },
});

Deno.test({
  name: "brk40: threads an ended call left busy retire its process; the next call is not blamed",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1 });
    try {
      const tool = dir.tool("detach", DETACH);
      // Warm first: the call that leaves the work returns within a few milliseconds of starting it.
      const warm = await runner.run(call(tool, { n: 0 }));
      assert.equal(warm.ok, true, JSON.stringify(warm));
      const first = await runner.run(call(tool, { n: 64 }));
      assert.equal(first.ok, true, JSON.stringify(first));
      // Lands on the warm process whose threads the first call's left-over work holds (or on a fresh one, if
      // the watch retired it first): it runs, instead of failing tool_cpu_exceeded for work it did not start.
      const next = await runner.run(call(tool, { n: 0, ms: 2_500 }, { timeoutMs: 20_000 }));
      assert.equal(next.ok, true, JSON.stringify(next));
    } finally {
      await runner.close();
      dir.cleanup();
    }
  },
});

Deno.test({
  name: "brk40: bursts of 32 threads under a second each, with rests between, are killed too",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = new ToolDir();
    const runner = new ToolRunner({ maxWarmPerKey: 1 });
    try {
      const tool = dir.tool("bursts", BURSTS);
      // Before: a count at or under the bound restarted the one-second window, so 0.6 s bursts with 0.3 s
      // rests kept 32 threads runnable two thirds of the time for as long as the call's limit.
      const result = await runner.run(
        call(tool, { bursts: 14, burstMs: 600, restMs: 300 }, { timeoutMs: 60_000 }),
      );
      assert.equal(result.ok, false, JSON.stringify(result));
      if (result.ok) return;
      assert.equal(result.failure.code, "tool_cpu_exceeded", JSON.stringify(result.failure));
    } finally {
      await runner.close();
      dir.cleanup();
    }
  },
});
