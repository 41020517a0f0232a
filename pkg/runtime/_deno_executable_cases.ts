/**
 * Which deno runs child processes: ours from a checkout; in the compiled binary the one on PATH, or a clear error.
 * It sets PATH and the compiled-binary marker for its whole process: deno_executable_test.ts runs it in a
 * process of its own (test/support/own_process.ts).
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { AS_COMPILED_ENV, denoExecutable, isCompiledBinary } from "./deno_executable.ts";

function withEnv(env: Record<string, string | undefined>, fn: () => void): void {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  };
  apply(env);
  try {
    fn();
  } finally {
    apply(saved);
  }
}

Deno.test("denoExecutable", async (t) => {
  await t.step("from a checkout: the deno running us", () => {
    withEnv({ [AS_COMPILED_ENV]: undefined }, () => {
      assert.equal(isCompiledBinary(), false);
      assert.equal(denoExecutable(), Deno.execPath());
    });
  });

  await t.step("as the compiled binary: the deno on PATH", () => {
    withEnv({ [AS_COMPILED_ENV]: "1", PATH: `/nonexistent:${dirname(Deno.execPath())}` }, () => {
      assert.equal(isCompiledBinary(), true);
      assert.equal(denoExecutable(), Deno.execPath());
    });
  });

  await t.step("as the compiled binary with no deno on PATH: says what to install", () => {
    withEnv({ [AS_COMPILED_ENV]: "1", PATH: "/nonexistent" }, () => {
      assert.throws(
        () => denoExecutable(),
        /runs tools with the deno on PATH, and there is none: install Deno/,
      );
    });
  });
});
