/**
 * The `deno run` flags of a test's own `compozy` process (a CLI command, `compozy dev`, an engine started
 * alone).
 *
 * `--node-modules-dir=manual`: the process loads the npm packages already in node_modules (installed by `make
 * test`'s `deno install --frozen`, and by any `deno` run of the checkout in its `auto` mode, `deno test`'s
 * included) instead of checking them at its start under node_modules' exclusive lock: 17 takings of that lock
 * per CLI start (86 since the commands load on call), each a wait behind every other `deno` of the suite
 * starting at the same time. `compozy --help`: 0.67 → 0.39 s of CPU, 0.89 → 0.40 s of wall time (6 runs,
 * median). The CLI runs as it does from a checkout; only that check is skipped.
 *
 * @module
 */

/** Put before the script in `deno run -A <flags> main.ts …`. */
export const COMPOZY_DENO_RUN_FLAGS: readonly string[] = ["--node-modules-dir=manual"];
