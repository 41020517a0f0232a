/**
 * `deno task bench [name…]`: runs every benchmark module present under bench/ and prints each one's rows as
 * a table. Modules are loaded only if their file exists, so a benchmark can be added by writing its file.
 * Exits 1 when a benchmark failed (the others still run), 2 for an unknown name; `--help` lists the names.
 */
import { type BenchRow, formatTable } from "./_table.ts";

interface Benchmark {
  name: string;
  title: string;
  file: string;
  exportName: string;
}

const BENCHMARKS: Benchmark[] = [
  {
    name: "nats",
    title: "NATS: publish → consume of encoded events",
    file: "nats_bench.ts",
    exportName: "benchNats",
  },
  { name: "config", title: "Configuration loading", file: "config_bench.ts", exportName: "benchConfig" },
  { name: "runtime", title: "Tool runtime", file: "runtime_bench.ts", exportName: "benchRuntime" },
  { name: "agent", title: "Agent loop", file: "agent_bench.ts", exportName: "benchAgent" },
  { name: "engine", title: "Workflow engine", file: "engine_bench.ts", exportName: "benchEngine" },
  { name: "history", title: "History reads", file: "history_bench.ts", exportName: "benchHistory" },
  { name: "api", title: "HTTP API", file: "api_bench.ts", exportName: "benchApi" },
  {
    name: "timeline",
    title: "Timeline of a W1 workflow through the HTTP API (tap on `>`)",
    file: "timeline_bench.ts",
    exportName: "benchTimeline",
  },
  {
    name: "cluster",
    title: "Work sharing across engine and runtime processes",
    file: "cluster_bench.ts",
    exportName: "benchCluster",
  },
];

function usage(): string {
  return "Usage: deno task bench [name…]\n\nRuns the named benchmarks (default: all of them) and prints a " +
    "table for each. Exit code: 0 all ran, 1 one failed, 2 an unknown name.\n\nNames:\n" +
    BENCHMARKS.map((b) => `  ${b.name.padEnd(10)}${b.title}`).join("\n");
}

async function main(names: string[]): Promise<number> {
  // `--help` was "Unknown benchmark '--help'", exit 2 (outside review api35).
  if (names.includes("--help") || names.includes("-h")) {
    console.log(usage());
    return 0;
  }
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length > 0) {
    console.error(
      `Unknown benchmark ${unknown.map((n) => `'${n}'`).join(", ")}: expected one of ` +
        BENCHMARKS.map((b) => b.name).join(", "),
    );
    return 2;
  }
  const selected = names.length > 0 ? BENCHMARKS.filter((b) => names.includes(b.name)) : BENCHMARKS;
  const missing: string[] = [];
  let failed = 0;
  for (const benchmark of selected) {
    const url = new URL(benchmark.file, import.meta.url);
    if (!(await exists(url))) {
      missing.push(benchmark.file);
      continue;
    }
    try {
      const started = performance.now();
      const rows = await run(benchmark, url);
      const seconds = ((performance.now() - started) / 1_000).toFixed(1);
      console.log(formatTable(`${benchmark.title} (bench/${benchmark.file}, ${seconds} s)`, rows));
    } catch (e) {
      failed++;
      console.error(`${benchmark.name}: failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    }
  }
  if (missing.length > 0) console.log(`Not present, skipped: ${missing.map((f) => `bench/${f}`).join(", ")}`);
  return failed > 0 ? 1 : 0;
}

async function run(benchmark: Benchmark, url: URL): Promise<BenchRow[]> {
  const module = await import(url.href);
  const fn = module[benchmark.exportName];
  if (typeof fn !== "function") {
    throw new TypeError(`bench/${benchmark.file} does not export a function '${benchmark.exportName}'`);
  }
  const rows = await fn();
  if (!Array.isArray(rows)) {
    throw new TypeError(`${benchmark.exportName}() must return an array of rows, got ${typeof rows}`);
  }
  return rows as BenchRow[];
}

async function exists(url: URL): Promise<boolean> {
  try {
    return (await Deno.stat(url)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
