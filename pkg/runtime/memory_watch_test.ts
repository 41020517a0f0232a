import assert from "node:assert/strict";
import { MemoryWatch } from "./memory_watch.ts";

/**
 * A real process that writes `mib` MiB to a file and then idles, watched as a sandbox whose one call has
 * already returned: the watch first sees it between calls, as it sees a call that wrote fast and returned
 * before a sample.
 */
Deno.test("the write bound kills a process whose call wrote past it and returned before a sample", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-memory-watch-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const mib = new Uint8Array(1024 * 1024);
       for (let i = 0; i < 12; i++) Deno.writeFileSync(${JSON.stringify(dir)} + "/f" + i, mib);
       console.log("wrote");
       setTimeout(() => {}, 60_000);`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const exited = child.status;
  const reader = child.stdout.getReader();
  let said = "";
  while (!said.includes("wrote\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    said += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  assert.equal(said, "wrote\n");
  const kills: string[] = [];
  const watch = new MemoryWatch(1024 * 1024 * 1024);
  try {
    watch.watch({
      pid: child.pid,
      exited,
      kill: (reason, message) => {
        kills.push(`${reason}: ${message}`);
        try {
          child.kill("SIGKILL");
        } catch {
          // Already exited: a sample taken between the kill and the exit kills again (SandboxProcess.kill
          // ignores it the same way; thrown here, it failed the test file as an uncaught error in CI).
        }
      },
      betweenCalls: true,
      calls: 1,
      maxCallWriteBytes: 4 * 1024 * 1024,
    });
    // Bounded: without the kill the process idles for a minute.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
    clearTimeout(timer);
    // A sample between the kill and the exit kills again.
    assert.ok(kills.length >= 1, "the watch did not kill the process");
    assert.match(
      kills[0],
      /^writes: it wrote \d{8} bytes of files in one call, past the bound of 4194304 bytes \(COMPOZY_SANDBOX_MAX_CALL_WRITE_BYTES\)$/,
    );
  } finally {
    watch.stop();
    try {
      child.kill("SIGKILL");
    } catch {
      // Already killed by the watch.
    }
    await exited;
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
