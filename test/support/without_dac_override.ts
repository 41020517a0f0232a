/**
 * Runs the CLI as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (`setpriv`), so that file modes
 * apply to it: the tests run as root, which reads a file of mode 000 as any other.
 */
import { join, resolve } from "node:path";
import { COMPOZY_DENO_RUN_FLAGS } from "./deno_run.ts";

const MAIN = join(resolve(import.meta.dirname!, "../.."), "main.ts");

/** Whether `setpriv` is there to drop the capabilities (tests that need it are ignored otherwise). */
export function hasSetpriv(): boolean {
  try {
    return new Deno.Command("setpriv", { args: ["--version"] }).outputSync().success;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** `compozy <args>` to completion, with file modes applying to it. */
export async function runCliWithoutDacOverride(args: string[]) {
  const out = await new Deno.Command("setpriv", {
    args: [
      "--bounding-set=-dac_override,-dac_read_search",
      "--inh-caps=-dac_override,-dac_read_search",
      Deno.execPath(),
      "run",
      "-A",
      ...COMPOZY_DENO_RUN_FLAGS,
      MAIN,
      ...args,
    ],
    env: { NO_COLOR: "1", COMPOZY_LOG_LEVEL: "warn" },
    stdin: "null",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}
