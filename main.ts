/**
 * The `compozy` entry point (`deno task compozy <command>`, or the compiled binary). See cli/main.ts.
 *
 * @module
 */
import { main } from "./cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
