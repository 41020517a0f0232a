/**
 * The managed server's store guard runs its system programs from the system's folders, never through a PATH
 * look-up: an `sh` in a PATH folder before `/bin` (one a tool may have been granted to write) ran as the
 * operator when the watchdog started (outside break attempt brk-sbx3, "Open").
 *
 * It changes PATH for its whole process: system_programs_test.ts runs it in a process of its own
 * (test/support/own_process.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { findNatsServerBinary, ManagedNatsServer } from "../../pkg/nats/server.ts";
import { systemProgram } from "../../pkg/nats/system_programs.ts";

Deno.test("the store watchdog's sh is the system's, not the first sh on PATH", async () => {
  const binary = await findNatsServerBinary();
  const dir = await Deno.makeTempDir({ prefix: "compozy-path-plant-" });
  const planted = join(dir, "bin");
  const marker = join(dir, "planted-ran");
  await Deno.mkdir(planted);
  // Does what the real one does, after leaving a trace: the operator would notice nothing.
  for (const name of ["sh", "ps", "tr", "grep"]) {
    const script = join(planted, name);
    await Deno.writeTextFile(script, `#!/bin/sh\necho ${name} >> '${marker}'\nexec /bin/${name} "$@"\n`);
    await Deno.chmod(script, 0o755);
  }
  const oldPath = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", `${planted}:${oldPath}`);
  let server: ManagedNatsServer | undefined;
  try {
    server = await ManagedNatsServer.start({ binary, storeDir: join(dir, "store") });
  } finally {
    Deno.env.set("PATH", oldPath);
  }
  try {
    // The watchdog was spawned by start(); give a planted program time to have written its trace.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const ran = await Deno.readTextFile(marker).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return "";
      throw e;
    });
    assert.equal(ran, "", `planted programs ran: ${ran}`);
    assert.ok(systemProgram("sh").startsWith("/"));
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
