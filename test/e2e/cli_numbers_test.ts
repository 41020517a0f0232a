/**
 * Numbers on the command line are decimal digits (outside review api35): `--limit 0x10` was a page of 16,
 * `COMPOZY_PORT=1e3` the port 1000 and `COMPOZY_PORT=" 80"` the port 80, as the API's `?limit=` once was.
 * Each is refused before any request, naming the flag or the value, exit 1.
 */
import assert from "node:assert/strict";
import { runCli } from "./support/dev_server.ts";

Deno.test("a number that is not plain decimal digits is refused, naming it", async () => {
  // Port 9 (discard) answers nothing: a command that got past its flags would say "Cannot reach".
  for (const limit of ["0x10", "1e1", " 2", "+2", "2.0"]) {
    const res = await runCli(["executions", "list", "--limit", limit, "--server", "http://127.0.0.1:9"]);
    assert.equal(res.code, 1, `--limit '${limit}': ${res.stderr}`);
    assert.match(res.stderr, /--limit/, `--limit '${limit}'`);
    assert.doesNotMatch(res.stderr, /Cannot reach/);
  }
  for (const port of ["0x10", "1e3", " 80", "8080.0"]) {
    const res = await runCli(["executions", "list"], { COMPOZY_PORT: port });
    assert.equal(res.code, 1, `COMPOZY_PORT='${port}': ${res.stderr}`);
    assert.ok(res.stderr.includes(`Invalid port '${port}'`), `COMPOZY_PORT='${port}': ${res.stderr}`);
  }
  const plain = await runCli(["executions", "list", "--limit", "2", "--server", "http://127.0.0.1:9"]);
  assert.match(plain.stderr, /Cannot reach/, "a plain number is taken");
});
