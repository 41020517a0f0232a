import assert from "node:assert/strict";
import { reportsOutOfMemory, StderrScan } from "./sandbox_stderr.ts";

const encoder = new TextEncoder();

/** What Deno 2.9.6 printed when a 64 MB heap filled under load (the CI flake: it was read as a crash). */
const INEFFECTIVE_MARK_COMPACTS = `
<--- Last few GCs --->

[8832:0x7f52e0060000]     1340 ms: Mark-Compact 63.9 (65.0) -> 63.9 (65.0) MB, pooled: 0.0 MB, 19.36 / 0.00 ms (average mu = 0.217, current mu = 0.387) allocation failure; scavenge might not succeed



#
# Fatal JavaScript out of memory: Ineffective mark-compacts near heap limit
#
==== C stack trace ===============================

    /usr/lib/node_modules/deno/deno(+0x28b0d2e) [0x557d3cbacd2e]
`;

Deno.test("reportsOutOfMemory knows each out-of-memory report of V8 and Deno", () => {
  for (
    const line of [
      INEFFECTIVE_MARK_COMPACTS,
      "# Fatal JavaScript out of memory: Reached heap limit",
      "# Fatal process out of memory: Zone",
      "# Fatal process OOM in CALL_AND_RETRY_LAST",
      "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
      "# Fatal JavaScript invalid size error 169220804",
      "memory allocation of 2147483648 bytes failed",
    ]
  ) {
    assert.equal(reportsOutOfMemory(line), true, line);
  }
});

Deno.test("reportsOutOfMemory is false for other deaths", () => {
  for (
    const text of [
      "",
      'error: Uncaught (in worker "") Error: boom',
      "thread 'main' panicked at src/main.rs:1:1",
      "Segmentation fault (core dumped)",
    ]
  ) {
    assert.equal(reportsOutOfMemory(text), false, text);
  }
});

Deno.test("StderrScan finds a marker far before the kept tail", () => {
  const scan = new StderrScan(64);
  scan.push(encoder.encode(INEFFECTIVE_MARK_COMPACTS));
  for (let i = 0; i < 100; i++) scan.push(encoder.encode(`    frame ${i} [0x557d3cbacd2e]\n`));
  assert.equal(scan.outOfMemory, true);
  assert.equal(scan.tail.length <= 64, true);
  assert.match(scan.tail, /frame 99/);
  assert.doesNotMatch(scan.tail, /out of memory/);
});

Deno.test("StderrScan finds a marker split across chunks, even inside a multi-byte character", () => {
  const bytes = encoder.encode("é # Fatal JavaScript out of memory: Reached heap limit\n");
  for (let cut = 1; cut < bytes.length; cut++) {
    const scan = new StderrScan(8 * 1024);
    scan.push(bytes.subarray(0, cut));
    scan.push(bytes.subarray(cut));
    assert.equal(scan.outOfMemory, true, `cut at ${cut}`);
  }
  for (let size = 1; size <= 7; size++) {
    const scan = new StderrScan(8 * 1024);
    for (let at = 0; at < bytes.length; at += size) scan.push(bytes.subarray(at, at + size));
    assert.equal(scan.outOfMemory, true, `chunks of ${size}`);
    assert.equal(scan.tail, new TextDecoder().decode(bytes));
  }
});

Deno.test("StderrScan of ordinary output reports no memory failure", () => {
  const scan = new StderrScan(8 * 1024);
  scan.push(encoder.encode("warning: something\n"));
  assert.equal(scan.outOfMemory, false);
});
