/**
 * A `node:fs` descriptor a call leaves open does not reach the next call (issue 10). Deno's Node layer opens
 * `fs.open`/`openSync`/`fs.promises.open` files as descriptors of the process, through ops the sandbox
 * cannot wrap, so the call's end could not close them: the next call of the same warm process (maybe for
 * another execution) read the file through the descriptor the first one kept in module state. The runtime
 * now compares the process's open descriptors after each call with those open before it and retires a
 * process whose call left a regular file open. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, eventually, ToolDir } from "./_helpers.ts";

const SECRET = "execution A's data";

/**
 * A tool that opens the secret in its first call (`open`, an expression giving a descriptor, an object with
 * `fd`, or a `Deno.FsFile`), keeps it in module state without closing it, and reads through it in its second.
 */
function keeper(imports: string, open: string, read: string): string {
  return `${imports}
    let kept: any;
    export default async (input: { path: string; step: number; fail?: boolean }) => {
      if (input.step === 1) {
        kept = ${open};
        if (input.fail) throw new Error("failed while holding the file");
        return "opened";
      }
      if (kept === undefined) return "nothing kept";
      const buf = new Uint8Array(64);
      try {
        const n = ${read};
        return new TextDecoder().decode(buf.subarray(0, n ?? 0));
      } catch (e) {
        return (e as Error).name;
      }
    };`;
}

/** What each open descriptor of process `pid` points to; none once the process is gone. */
function fdLinks(pid: number): string[] {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/fd`)].map((fd) => {
      try {
        return Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`);
      } catch {
        return "closed since it was listed";
      }
    });
  } catch {
    return []; // the process was retired
  }
}

Deno.test("a node:fs descriptor a call leaves open is not there for the next call", async (t) => {
  const dir = new ToolDir();
  const data = Deno.makeTempDirSync({ prefix: "compozy-fd-leftovers-" });
  const path = join(data, "secret.txt");
  Deno.writeTextFileSync(path, SECRET);
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  // For the steps that count processes: the replacements of the processes retired above start on their own.
  const quiet = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  // A device too: a tool granted one can open it with node:fs, and it is not a file the runtime follows.
  const permissions = { read: [data, "/dev/zero"] };
  const run = (tool: string, step: number, fail = false, by = runner) =>
    by.run(call(tool, { path, step, fail }, { permissions, timeoutMs: 60_000 }));
  try {
    const cases: Record<string, string> = {
      "default import, openSync": keeper(
        `import fs from "node:fs";`,
        "fs.openSync(input.path)",
        "fs.readSync(kept, buf, 0, 64, 0)",
      ),
      "named import, openSync": keeper(
        `import { openSync, readSync } from "node:fs";`,
        "openSync(input.path)",
        "readSync(kept, buf, 0, 64, 0)",
      ),
      "fs.open with a callback": keeper(
        `import fs from "node:fs";`,
        "await new Promise((ok, no) => fs.open(input.path, (e, fd) => e ? no(e) : ok(fd)))",
        "fs.readSync(kept, buf, 0, 64, 0)",
      ),
      "fs.promises.open": keeper(
        `import { promises } from "node:fs";`,
        "await promises.open(input.path)",
        "(await kept.read(buf, 0, 64, 0)).bytesRead",
      ),
      "Deno.open": keeper("", "await Deno.open(input.path)", "kept.readSync(buf)"),
    };
    for (const [name, source] of Object.entries(cases)) {
      await t.step(name, async () => {
        const tool = dir.tool(name.replace(/\W+/g, "_"), source);
        const first = await run(tool, 1);
        assert.deepEqual(first.ok && first.output, "opened", JSON.stringify(first));
        const second = await run(tool, 2);
        assert.ok(second.ok, JSON.stringify(second));
        assert.notEqual(second.output, SECRET, "the second call read the file the first one left open");
      });
    }

    await t.step("a call that threw while holding a node:fs descriptor", async () => {
      const tool = dir.tool("threw", cases["default import, openSync"]);
      const first = await run(tool, 1, true);
      assert.ok(!first.ok && first.failure.code === "tool_threw", JSON.stringify(first));
      const second = await run(tool, 2);
      assert.deepEqual(second.ok && second.output, "nothing kept");
    });

    await t.step("a node:fs open an ended call started, completed between calls", async () => {
      // The call returns at once; its chain of file operations opens the file after the call's end was
      // looked at, while no call runs.
      const tool = dir.tool(
        "late_open",
        keeper(
          `import fs from "node:fs";`,
          `undefined;
           void (async () => {
             for (let i = 0; i < 20; i++) await fs.promises.stat(input.path);
             kept = fs.openSync(input.path);
           })()`,
          "fs.readSync(kept, buf, 0, 64, 0)",
        ),
      );
      const first = await run(tool, 1);
      assert.deepEqual(first.ok && first.output, "opened", JSON.stringify(first));
      await new Promise((r) => setTimeout(r, 500));
      const second = await run(tool, 2);
      assert.deepEqual(second.ok && second.output, "nothing kept");
    });

    // The runtime looks at the process's descriptors before it sends a call: an open that an ended call's
    // chain completes after that look, but before the call's code runs, was not seen (the next call read
    // the file). The chain makes that window wide: once the test says "go", it blocks the worker's thread
    // for 400 ms (no CPU, shorter than the host's liveness check), and the call is sent meanwhile. Before,
    // the second call read execution A's data (and the step above could too, when its stats were slow).
    await t.step("a node:fs open an ended call's chain completes after the runtime looked", async () => {
      const go = join(data, "go");
      const tool = dir.tool(
        "late_open_after_look",
        keeper(
          `import fs from "node:fs";`,
          `undefined;
           void (async () => {
             const pause = new Int32Array(new SharedArrayBuffer(4));
             while (!fs.existsSync(${JSON.stringify(go)})) {
               await fs.promises.stat(input.path);
               Atomics.wait(pause, 0, 0, 10);
             }
             Atomics.wait(pause, 0, 0, 400);
             kept = fs.openSync(input.path);
           })()`,
          "fs.readSync(kept, buf, 0, 64, 0)",
        ),
      );
      try {
        const first = await run(tool, 1);
        assert.deepEqual(first.ok && first.output, "opened", JSON.stringify(first));
        Deno.writeTextFileSync(go, "");
        await new Promise((r) => setTimeout(r, 100));
        const second = await run(tool, 2);
        assert.deepEqual(second.ok && second.output, "nothing kept");
      } finally {
        Deno.removeSync(go);
      }
    });

    // Counting the descriptors cannot tell a file opened from one while another descriptor closed: the
    // ended call's chain closes a device its module's load opened and opens the file, between calls. A
    // descriptor of Deno's own that closes does the same (a connection its `fetch` kept for reuse), and so did
    // one open for a moment (a thread's start reads /sys/devices/system/cpu/online) that a look counted but
    // did not list: the file the chain opened later left the count as accepted (the flaky step "…completed
    // between calls" above, in CI at load ~10). Before the look an `unsettled` call asks for listed (and
    // devices were followed), the second call read execution A's data, 13 runs of 14.
    await t.step(
      "a node:fs open between calls is seen when the chain closed another descriptor",
      async () => {
        // The chain opens the file once the runtime has looked at the call's end (a file open then retires
        // the process at once). It waits without a turn of the event loop: file operations of Deno's start
        // threads, and a look that met one open for a moment counted a change and listed (by chance).
        const go = join(data, "go_device");
        const tool = dir.tool(
          "late_open_device_closed",
          `import fs from "node:fs";
         const device = fs.openSync("/dev/zero");
         let kept: any;
         export default async (input: { path: string; step: number }) => {
           if (input.step === 1) {
             void (async () => {
               await fs.promises.stat(input.path);
               const pause = new Int32Array(new SharedArrayBuffer(4));
               while (!fs.existsSync(${JSON.stringify(go)})) Atomics.wait(pause, 0, 0, 5);
               fs.closeSync(device);
               kept = fs.openSync(input.path);
             })();
             return Deno.pid;
           }
           if (kept === undefined) return "nothing kept";
           const buf = new Uint8Array(64);
           return new TextDecoder().decode(buf.subarray(0, fs.readSync(kept, buf, 0, 64, 0)));
         };`,
        );
        const first = await run(tool, 1);
        assert.ok(first.ok && typeof first.output === "number", JSON.stringify(first));
        const pid = first.output as number;
        Deno.writeTextFileSync(go, "");
        assert.ok(
          await eventually(() => fdLinks(pid).includes(path)),
          "the ended call's chain opened the file",
        );
        const second = await run(tool, 2);
        assert.deepEqual(second.ok && second.output, "nothing kept");
      },
    );

    // The same with a descriptor no look follows: the connection Deno's `fetch` keeps for reuse, which its
    // server closes between calls while the ended call's chain opens the file. Only a listing sees the file
    // (devices are followed, so the step above is seen before the call too).
    await t.step("a node:fs open between calls is seen when a connection of Deno's own closed", async () => {
      const go = join(data, "go_connection");
      const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const address = `127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
      const answered = (async () => {
        const conn = await server.accept();
        const buf = new Uint8Array(4096);
        let request = "";
        while (!request.includes("\r\n\r\n")) {
          const n = await conn.read(buf);
          if (n === null) break;
          request += new TextDecoder().decode(buf.subarray(0, n));
        }
        await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        return conn;
      })();
      const tool = dir.tool(
        "late_open_connection_closed",
        `import fs from "node:fs";
         let kept: any;
         export default async (input: { path: string; step: number; url: string }) => {
           if (input.step === 1) {
             await (await fetch(input.url)).text();
             void (async () => {
               const pause = new Int32Array(new SharedArrayBuffer(4));
               while (!fs.existsSync(${JSON.stringify(go)})) {
                 await fs.promises.stat(input.path);
                 Atomics.wait(pause, 0, 0, 5);
               }
               kept = fs.openSync(input.path);
             })();
             return Deno.pid;
           }
           if (kept === undefined) return "nothing kept";
           const buf = new Uint8Array(64);
           return new TextDecoder().decode(buf.subarray(0, fs.readSync(kept, buf, 0, 64, 0)));
         };`,
      );
      const byCall = (step: number) =>
        runner.run(call(tool, { path, step, url: `http://${address}/` }, {
          permissions: { read: [data], net: [address] },
          timeoutMs: 60_000,
        }));
      try {
        const first = await byCall(1);
        assert.ok(first.ok && typeof first.output === "number", JSON.stringify(first));
        const pid = first.output as number;
        const links = () => fdLinks(pid);
        const held = links();
        (await answered).close();
        // The connection is a socket the process held after the call and holds no more.
        assert.ok(
          await eventually(() => held.some((link) => link.startsWith("socket:") && !links().includes(link))),
          "Deno closed its connection",
        );
        Deno.writeTextFileSync(go, "");
        assert.ok(await eventually(() => links().includes(path)), "the ended call's chain opened the file");
        const second = await byCall(2);
        assert.deepEqual(second.ok && second.output, "nothing kept");
      } finally {
        server.close();
      }
    });

    await t.step("a call that closes what it opened keeps its warm process", async () => {
      const tool = dir.tool(
        "closes",
        `import fs from "node:fs";
         export default async (input: { path: string }) => {
           const fd = fs.openSync(input.path);
           fs.closeSync(fd);
           const handle = await fs.promises.open(input.path);
           await handle.close();
           return fs.readFileSync(input.path, "utf8");
         };`,
      );
      const spawned = quiet.stats().spawned;
      for (let i = 0; i < 3; i++) assert.deepEqual((await run(tool, 1, false, quiet)).ok, true);
      assert.equal(quiet.stats().spawned - spawned, 1, "the three calls ran in one warm process");
    });

    // The count of descriptors is the same after the call as before it, and the file lands on the number the
    // closed one freed (the lowest free): only the descriptor's identity tells them apart. A folder opened by
    // the load hid a file that way too (outside break attempt breaker2, D2), and so did a device: before
    // devices were followed, the second call read execution A's data.
    const decoy = join(data, "decoy.txt");
    Deno.writeTextFileSync(decoy, "decoy");
    for (const [what, loaded] of [["a file", decoy], ["a folder", data], ["a device", "/dev/zero"]]) {
      await t.step(
        `a call that closes ${what} its module's load opened and leaves a file open on the same number`,
        async () => {
          const tool = dir.tool(
            `swap_load_${what.slice(2)}`,
            keeper(
              `import fs from "node:fs";
               const loaded = fs.openSync(${JSON.stringify(loaded)});`,
              `(fs.closeSync(loaded), fs.openSync(input.path))`,
              "fs.readSync(kept, buf, 0, 64, 0)",
            ),
          );
          const first = await run(tool, 1);
          assert.deepEqual(first.ok && first.output, "opened", JSON.stringify(first));
          const second = await run(tool, 2);
          assert.deepEqual(second.ok && second.output, "nothing kept");
        },
      );
    }

    await t.step("a node:fs descriptor the module's load opened stays for every call", async () => {
      const tool = dir.tool(
        "load_fd",
        `import fs from "node:fs";
         const fd = fs.openSync(${JSON.stringify(path)});
         export default () => {
           const buf = new Uint8Array(64);
           return new TextDecoder().decode(buf.subarray(0, fs.readSync(fd, buf, 0, 64, 0)));
         };`,
      );
      const spawned = quiet.stats().spawned;
      for (let i = 0; i < 3; i++) {
        const result = await run(tool, 1, false, quiet);
        assert.deepEqual(result.ok && result.output, SECRET);
      }
      assert.equal(quiet.stats().spawned - spawned, 1, "the three calls ran in one warm process");
    });
  } finally {
    await runner.close();
    await quiet.close();
    dir.cleanup();
    Deno.removeSync(data, { recursive: true });
  }
});
