/**
 * Deno's cache folder (`DENO_DIR`), which no sandbox may write: it holds the transpiled modules every
 * sandbox process loads (the host thread and worker bootstrap) and V8's code cache (red team 4 F6). Deno
 * checks each emitted file against a hash of its source, so a poisoned emit was not shown to load; a write
 * grant reaching the cache is refused all the same.
 *
 * @module
 */
import { resolve } from "node:path";
import { denoExecutable } from "./deno_executable.ts";

let cached: Promise<string> | undefined;

/**
 * The cache folder the sandboxes' `deno` uses: `DENO_DIR` when set, else what `deno info --json` reports
 * (asked once per process). Sandboxes start with their environment cleared, so the runtime hands them this
 * folder as their `DENO_DIR` (sandbox_process.ts): otherwise they use their user's default cache whatever
 * the runtime's `DENO_DIR`, `XDG_CACHE_HOME` or `HOME`.
 *
 * @throws {Error} when `deno info` fails or reports no `denoDir`, with its output as the cause.
 */
export function denoCacheDir(): Promise<string> {
  cached ??= lookUp().catch((e) => {
    cached = undefined;
    throw e;
  });
  return cached;
}

async function lookUp(): Promise<string> {
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return resolve(fromEnv);
  const out = await new Deno.Command(denoExecutable(), { args: ["info", "--json"], stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout);
  let dir: unknown;
  try {
    dir = (JSON.parse(text) as { denoDir?: unknown }).denoDir;
  } catch (e) {
    throw new Error(`'deno info --json' did not print JSON (exit ${out.code})`, { cause: e });
  }
  if (typeof dir !== "string" || dir === "") {
    throw new Error(`'deno info --json' reported no denoDir (exit ${out.code})`, {
      cause: new TextDecoder().decode(out.stderr),
    });
  }
  return resolve(dir);
}
