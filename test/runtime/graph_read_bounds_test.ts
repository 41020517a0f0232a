/**
 * The import check's `deno info` reads every file a tool's module names before the policy can refuse one
 * (outside break attempt brk-sbx3 G1): a device that never ends must not take the host's memory, and one
 * whose read never returns must not hold the tool's calls for good. Real sandboxes and real `deno info`.
 */
import assert from "node:assert/strict";
import { configureGraphReadTimeout, DEFAULT_GRAPH_READ_TIMEOUT_MS } from "../../pkg/runtime/graph_reader.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/** Resident memory this test lets a `deno info` reach before it kills it (the bound is 1 GiB of data). */
const WATCHDOG_KIB = 1536 * 1024;

/** The `deno info` processes reading `module`, by pid. */
function graphReaders(module: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
    } catch {
      continue; // it ended meanwhile
    }
    if (argv.includes("info") && argv.includes(module)) pids.push(Number(entry.name));
  }
  return pids;
}

function residentKib(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Watches the `deno info` runs of `module` while `during` runs; one past {@linkcode WATCHDOG_KIB} is killed
 * (so that the code before the fix does not take this machine's memory) and reported.
 */
async function watchGraphReaders<T>(
  module: string,
  during: () => Promise<T>,
): Promise<{ result: T; peakKib: number }> {
  let peakKib = 0;
  const sample = setInterval(() => {
    for (const pid of graphReaders(module)) {
      const kib = residentKib(pid);
      peakKib = Math.max(peakKib, kib);
      if (kib > WATCHDOG_KIB) Deno.kill(pid, "SIGKILL");
    }
  }, 50);
  try {
    return { result: await during(), peakKib };
  } finally {
    clearInterval(sample);
  }
}

Deno.test("break G1: a module importing /dev/zero does not grow the import check without bound", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool("zero", `import "/dev/zero";\nexport default () => "ran";\n`);
    const { result, peakKib } = await watchGraphReaders(
      tool,
      () => runner.run(call(tool, null, { timeoutMs: 120_000 })),
    );
    assert.ok(!result.ok, JSON.stringify(result));
    // Refused as a file outside the tool's folder once deno info has given up on it (G4).
    assert.equal(result.failure.code, "tool_import_refused", JSON.stringify(result));
    assert.ok(
      peakKib <= WATCHDOG_KIB,
      `deno info reached ${peakKib} KiB resident and was killed by the test`,
    );
    assert.deepEqual(graphReaders(tool), [], "a deno info of the module is still running");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("break G1: a module importing /dev/ptmx (a read that never returns) fails its calls", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  configureGraphReadTimeout(2_000);
  const tool = dir.tool("ptmx", `import "/dev/ptmx";\nexport default () => "ran";\n`);
  try {
    // A wait bound far above the check's, so the call cannot end as a wait for a sandbox first.
    for (const attempt of [1, 2]) {
      const result = await runner.run(call(tool, null, { timeoutMs: 30_000 }));
      assert.ok(!result.ok, JSON.stringify(result));
      assert.equal(
        result.failure.code,
        "tool_module_invalid",
        `attempt ${attempt}: ${JSON.stringify(result)}`,
      );
      assert.match(result.failure.message, /module graph .* took over 2000 ms/);
    }
    assert.deepEqual(graphReaders(tool), [], "a deno info of the module is still running");
  } finally {
    configureGraphReadTimeout(DEFAULT_GRAPH_READ_TIMEOUT_MS);
    for (const pid of graphReaders(tool)) Deno.kill(pid, "SIGKILL");
    await runner.close();
    dir.cleanup();
  }
});

/** A chain of `count` modules in `dir`, each importing the next, named `<prefix><i>.ts`; returns the tool. */
function moduleChain(dir: ToolDir, count: number, prefix: string): string {
  for (let i = 0; i < count; i++) {
    const next = i + 1 < count ? `import "./${prefix}${i + 1}.ts";\n` : "";
    Deno.writeTextFileSync(`${dir.path}/${prefix}${i}.ts`, `${next}export const x${i} = ${i};\n`);
  }
  return dir.tool("chain", `import "./${prefix}0.ts";\nexport default () => "ran";\n`);
}

Deno.test("break G5: a graph too large for the sandbox's read list is refused, not crashed", async (t) => {
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const cases = [
      // Before: tool_crashed, "Failed to spawn '/bin/sh': Argument list too long", on every call.
      ["more modules than the bound", 4_000, "m", /over the 1000/],
      ["fewer modules, paths too long for one argument", 800, "m".repeat(180), /bytes, over the 98304/],
    ] as const;
    for (const [what, count, prefix, why] of cases) {
      await t.step(what, async () => {
        const dir = new ToolDir();
        try {
          const tool = moduleChain(dir, count, prefix);
          const result = await runner.run(call(tool, null, { timeoutMs: 120_000 }));
          assert.ok(!result.ok, JSON.stringify(result));
          assert.equal(result.failure.code, "tool_import_refused", result.failure.message);
          assert.match(result.failure.message, why);
        } finally {
          dir.cleanup();
        }
      });
    }
    await t.step("a graph under both bounds runs", async () => {
      const dir = new ToolDir();
      try {
        const tool = moduleChain(dir, 300, "m");
        const result = await runner.run(call(tool, null, { timeoutMs: 120_000 }));
        assert.deepEqual(result.ok && result.output, "ran", JSON.stringify(result));
      } finally {
        dir.cleanup();
      }
    });
  } finally {
    await runner.close();
  }
});
