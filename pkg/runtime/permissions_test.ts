import assert from "node:assert/strict";
import { normalizePermissions, processFlags, sandboxEnv, workerPermissions } from "./permissions.ts";

Deno.test("permissions", async (t) => {
  await t.step("no config means no grant and no flag", () => {
    const p = normalizePermissions(undefined, "/tools");
    assert.deepEqual(processFlags(p, ["/tools"]), ["--allow-read=/tools"]);
    assert.deepEqual(workerPermissions(p), {
      net: false,
      read: false,
      write: false,
      env: false,
      run: false,
      ffi: false,
      sys: false,
      import: false,
    });
  });

  await t.step("lists become sorted flags; relative paths resolve against the tool's folder", () => {
    const p = normalizePermissions(
      { net: ["b.example", "a.example:443"], read: ["data", "/etc/hosts"], write: ["../out"], env: ["KEY"] },
      "/srv/tools",
    );
    assert.deepEqual(processFlags(p, ["/srv/tools", "/rt/tool_worker.ts"]), [
      "--allow-net=a.example:443,b.example",
      "--allow-read=/srv/tools,/rt/tool_worker.ts,/etc/hosts,/srv/tools/data",
      "--allow-write=/srv/out",
      "--allow-env=KEY",
    ]);
    assert.deepEqual(
      workerPermissions(p).read,
      ["/etc/hosts", "/srv/tools/data"],
      "the tool does not get the loader's reads",
    );
  });

  await t.step("true grants the whole kind, never run, ffi or sys", () => {
    const p = normalizePermissions({ net: true, read: true, write: false, env: true }, "/t");
    assert.deepEqual(processFlags(p, ["/t"]), [
      "--allow-net",
      "--allow-read",
      "--allow-env",
      // The proxy variables (a proxy set through them is not checked against a net host list) and those the
      // loader, glibc and Deno read (HOSTALIASES at each look-up).
      "--deny-env=HTTP_PROXY,HTTPS_PROXY,ALL_PROXY,NO_PROXY,http_proxy,https_proxy,all_proxy,no_proxy," +
      "SSLKEYLOGFILE,GCONV_PATH,GETCONF_DIR,GLIBC_TUNABLES,HOSTALIASES,LOCALDOMAIN,LOCPATH,NIS_PATH,NLSPATH," +
      "RESOLV_HOST_CONF,RES_OPTIONS,NODE_OPTIONS,LD_*,DYLD_*,DENO_*,RUST_*,MALLOC_*,OTEL_*",
    ]);
    const w = workerPermissions(p);
    assert.equal(w.run, false);
    assert.equal(w.ffi, false);
    assert.equal(w.sys, false);
  });

  await t.step("entries that could smuggle a second flag entry are refused", () => {
    for (
      const bad of [{ net: ["a.com,evil.com"] }, { read: ["/tmp\n/etc"] }, { env: ["A=B"] }, { net: [""] }]
    ) {
      assert.throws(() => normalizePermissions(bad, "/t"), {
        name: "ToolFailure",
        code: "tool_permission_denied",
      });
    }
  });

  await t.step("the sandbox env holds only the values whose names are granted", () => {
    const env = { KEY: "1", OTHER: "2" };
    assert.deepEqual(sandboxEnv(normalizePermissions({ env: ["KEY", "MISSING"] }, "/t"), env), { KEY: "1" });
    assert.deepEqual(sandboxEnv(normalizePermissions({}, "/t"), env), {});
    assert.deepEqual(sandboxEnv(normalizePermissions({ env: true }, "/t"), env), env);
  });
});
