import assert from "node:assert/strict";
import { join } from "node:path";
import { OpenFileWatch } from "./open_files.ts";

/**
 * A Deno process that, once told "go", opens and closes a descriptor as fast as it can for `churnMs`, then
 * opens `path` and keeps it: the file lands on the number the churn used.
 */
const CHURN = `
  const [path, go, churnMs] = Deno.args;
  console.log("ready");
  // Waits for the go file without a descriptor of its own (a read of stdin would hold one).
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      Deno.statSync(go);
      break;
    } catch {
      Atomics.wait(pause, 0, 0, 1);
    }
  }
  console.log("churning");
  const until = performance.now() + Number(churnMs);
  while (performance.now() < until) Deno.openSync("/dev/null").close();
  const kept = Deno.openSync(path);
  console.log("opened");
  setTimeout(() => kept.close(), 60_000); // the test ends the process before
`;

/** Reads `child`'s stdout until a line `want` arrives. */
async function waitFor(lines: ReadableStreamDefaultReader<string>, want: string): Promise<void> {
  for (let text = ""; !text.split("\n").includes(want);) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`the process ended before it said ${want}`);
    text += value;
  }
}

// A descriptor the count takes in and the listing after it no longer sees (a thread's start reads
// /sys/devices/system/cpu/online for a moment) must not be accepted as part of what the process holds: the
// count it left was taken as "nothing new" when a file was opened later (the flaky step of
// test/runtime/fd_leftovers_test.ts "…completed between calls", in CI at load ~10).
Deno.test("a look that meets a descriptor open for a moment does not let a later file pass unseen", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "compozy-open-files-" });
  const script = join(dir, "churn.ts");
  const go = join(dir, "go");
  const path = join(dir, "secret.txt");
  Deno.writeTextFileSync(script, CHURN);
  Deno.writeTextFileSync(path, "execution A's data");
  try {
    for (let trial = 0; trial < 10; trial++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", `--allow-read=${dir},/dev/null`, script, path, go, "60"],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      try {
        await waitFor(lines, "ready");
        const watch = new OpenFileWatch(1024);
        assert.equal(watch.check(child), undefined);
        Deno.writeTextFileSync(go, "");
        await waitFor(lines, "churning");
        Deno.removeSync(go);
        // Looks while the process churns: some count the descriptor and then list without it. What they
        // say is not asserted: a thread the process starts opens a file for a moment, which a look may meet.
        for (const start = performance.now(); performance.now() - start < 50;) watch.check(child);
        await waitFor(lines, "opened");
        const said = watch.check(child) ?? "nothing seen";
        assert.match(said, /secret\.txt/, `trial ${trial}: ${said}`);
      } finally {
        child.kill();
        await lines.cancel();
        await child.status;
      }
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
