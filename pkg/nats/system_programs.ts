/**
 * The system programs the NATS store guard runs (`sh` for the watchdog, `ps` off Linux), by absolute path
 * from the system's own folders, never by a PATH look-up. A PATH folder that comes before `/bin` may be one
 * a tool can write (a `write` grant on `~/.local/bin`): an `sh` planted there ran as the operator at the next
 * start (outside break attempt brk-sbx3). The watchdog's `tr` and `grep` come from the same folders: its
 * PATH is {@linkcode SYSTEM_PATH}.
 *
 * @module
 */
import { join } from "node:path";

/** The folders system programs are taken from, in order; none of them is writable by a tool (runtime_code.ts). */
export const SYSTEM_DIRS = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] as const;
/** The PATH a system program is started with, so that the programs it runs come from the same folders. */
export const SYSTEM_PATH = SYSTEM_DIRS.join(":");

export class SystemProgramNotFoundError extends Error {
  constructor(readonly program: string) {
    super(`No ${program} in ${SYSTEM_DIRS.join(", ")}: Compozy runs it from the system's folders only`);
    this.name = "SystemProgramNotFoundError";
  }
}

const resolved = new Map<string, string>();

/**
 * The absolute path of the system program `name`, looked up once per process in {@linkcode SYSTEM_DIRS}.
 *
 * @throws {SystemProgramNotFoundError} when none of those folders holds it.
 */
export function systemProgram(name: string): string {
  const known = resolved.get(name);
  if (known !== undefined) return known;
  for (const dir of SYSTEM_DIRS) {
    const candidate = join(dir, name);
    try {
      if (!Deno.statSync(candidate).isFile) continue;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) continue;
      throw e;
    }
    resolved.set(name, candidate);
    return candidate;
  }
  throw new SystemProgramNotFoundError(name);
}
