import assert from "node:assert/strict";
import { connectsOnly, kernelLimitsFor, kernelLimitsLibrary } from "./kernel_limits.ts";

/**
 * Runs `source` in a `deno` of its own with `ffi` on `library` only, read, write and `extraFlags`; returns its
 * line (it must exit 0).
 */
async function runWithFfiOn(library: string, source: string, extraFlags: string[] = []): Promise<string> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(script, source);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--no-config",
        `--allow-ffi=${library}`,
        ...extraFlags,
        "--allow-read",
        "--allow-write",
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).trim();
  } finally {
    await Deno.remove(script);
  }
}

const LIMITS_MODULE = JSON.stringify(import.meta.resolve("./kernel_limits.ts"));

/** Runs `installKernelLimits` with the set-ID rule and `library`, then `after` (runWithFfiOn); returns its line. */
function installIn(library: string, after: string): Promise<string> {
  return runWithFfiOn(
    library,
    `import { installKernelLimits } from ${LIMITS_MODULE};
       try {
         installKernelLimits({ library: ${JSON.stringify(library)}, setIdModes: true, unixSockets: false });
         ${after}
       } catch (e) {
         console.log((e as Error).name + ": " + (e as Error).message);
       }`,
  );
}

Deno.test("installKernelLimits fails with a KernelLimitsError when the library cannot be opened", async () => {
  const line = await installIn("/nonexistent/libc.so.6", `console.log("installed");`);
  assert.match(
    line,
    /^KernelLimitsError: the sandbox could not install its kernel limits: opening \/nonexistent/,
  );
});

Deno.test("installKernelLimits refuses the bits, keeps other modes and revokes ffi", async () => {
  const library = kernelLimitsLibrary();
  assert.ok(library, "the runtime's C library (the filter is Linux-only)");
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/f`;
    const line = await installIn(
      library,
      `Deno.writeTextFileSync(${JSON.stringify(file)}, "x");
       Deno.chmodSync(${JSON.stringify(file)}, 0o1755);
       let setuid = "set";
       try { Deno.chmodSync(${JSON.stringify(file)}, 0o4755); } catch (e) { setuid = (e as Error).name; }
       console.log(setuid, Deno.permissions.querySync({ name: "ffi", path: ${
        JSON.stringify(library)
      } }).state);`,
    );
    assert.equal(line, "PermissionDenied prompt");
    assert.equal(Deno.statSync(file).mode! & 0o7777, 0o1755);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kernelLimitsFor: a process that may write gets the set-ID rule and the file bound, net: true the unix and listen rules, a host without a port the listen rule", () => {
  const library = kernelLimitsLibrary();
  assert.ok(library, "the runtime's C library (the limits are Linux-only)");
  assert.deepEqual(kernelLimitsFor({ write: ["/out"], net: [] }, 5), {
    library,
    setIdModes: true,
    unixSockets: false,
    listening: false,
    maxFileBytes: 5,
  });
  assert.deepEqual(kernelLimitsFor({ write: [], net: true }, 5), {
    library,
    setIdModes: false,
    unixSockets: true,
    listening: true,
  });
  assert.deepEqual(kernelLimitsFor({ write: true, net: true }, 5), {
    library,
    setIdModes: true,
    unixSockets: true,
    listening: true,
    maxFileBytes: 5,
  });
  // A host list reaches no abstract socket (Deno checks it as `unix: name`); one naming a port for each host
  // may listen there and needs no ffi. A host without a port connects only (outside break attempt brk36).
  assert.deepEqual(kernelLimitsFor({ write: [], net: ["example.com:443", "127.0.0.1"] }, 5), {
    library,
    setIdModes: false,
    unixSockets: false,
    listening: true,
  });
  assert.equal(kernelLimitsFor({ write: [], net: ["example.com:443", "[::1]:8080"] }, 5), undefined);
  assert.equal(kernelLimitsFor({ write: [], net: [] }, 5), undefined);
});

Deno.test("connectsOnly: net: true and a host without a port connect only; host:port entries may listen", () => {
  assert.equal(connectsOnly(true), true);
  for (
    const entry of ["localhost", "127.0.0.1", "example.com", "::1", "[::1]", "0.0.0.0", "host:", "host:x"]
  ) {
    assert.equal(connectsOnly([entry]), true, entry);
    assert.equal(connectsOnly(["a.example:80", entry]), true, entry);
  }
  for (
    const entry of ["localhost:8080", "127.0.0.1:0", "example.com:443", "[::1]:8080", "[::]:53", "unix:/s"]
  ) {
    assert.equal(connectsOnly([entry]), false, entry);
  }
  assert.equal(connectsOnly([]), false);
});

Deno.test("installKernelLimits with the unix rule refuses unix sockets, abstract or not, and keeps TCP", async () => {
  const library = kernelLimitsLibrary();
  assert.ok(library, "the runtime's C library (the limits are Linux-only)");
  const dir = await Deno.makeTempDir();
  try {
    const line = await runWithFfiOn(
      library,
      `import { installKernelLimits } from ${LIMITS_MODULE};
       const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
       installKernelLimits({ library: ${JSON.stringify(library)}, setIdModes: false, unixSockets: true });
       const outcomes = [];
       for (const path of ["\\0compozy-kernel-limits-test", ${JSON.stringify(`${dir}/s.sock`)}]) {
         try {
           Deno.listen({ transport: "unix", path }).close();
           outcomes.push("listening");
         } catch (e) {
           outcomes.push(e.name);
         }
       }
       const conn = await Deno.connect({ hostname: "127.0.0.1", port: tcp.addr.port });
       conn.close();
       tcp.close();
       outcomes.push("tcp connected");
       console.log(outcomes.join(", "));`,
      ["--allow-net"],
    );
    assert.equal(line, "PermissionDenied, PermissionDenied, tcp connected");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("installKernelLimits with the listen rule refuses listening, and keeps connecting", async () => {
  const library = kernelLimitsLibrary();
  assert.ok(library, "the runtime's C library (the limits are Linux-only)");
  const line = await runWithFfiOn(
    library,
    `import { installKernelLimits } from ${LIMITS_MODULE};
     const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
     installKernelLimits({ library: ${
      JSON.stringify(library)
    }, setIdModes: false, unixSockets: false, listening: true });
     const outcomes = [];
     try {
       Deno.listen({ hostname: "127.0.0.1", port: 0 }).close();
       outcomes.push("listening");
     } catch (e) {
       outcomes.push(e.name);
     }
     const conn = await Deno.connect({ hostname: "127.0.0.1", port: tcp.addr.port });
     conn.close();
     tcp.close();
     outcomes.push("tcp connected");
     console.log(outcomes.join(", "));`,
    ["--allow-net"],
  );
  assert.equal(line, "PermissionDenied, tcp connected");
});
