/**
 * Node's objects more than one level below a built-in module (red team round after 3, item 3): a call that
 * patches `fs.promises.readFile`, `http.Agent.prototype`, `stream.Readable.prototype.push` or an object
 * Node keeps deeper leaves nothing for the next call of the same process. Real sandbox processes; the next
 * call compares what it sees with what a first call saw.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

const TOOL = `
import fs from "node:fs";
import http from "node:http";
import stream from "node:stream";
import { Readable } from "node:stream";
import events from "node:events";
import util from "node:util";
import crypto from "node:crypto";

const fsRequired = (process as any).getBuiltinModule("node:fs");
const patches: Record<string, () => void> = {
  fsPromisesReadFile: () => { fsRequired.promises.readFile = () => "patched"; },
  fsPromisesConstants: () => { (fs.promises as any).constants.extra = "patched"; },
  fsConstants: () => { (fs.constants as any).extra = "patched"; },
  httpAgentPrototype: () => { (http.Agent.prototype as any).createConnection = () => "patched"; },
  httpAgentPrototypeAdded: () => { (http.Agent.prototype as any).extra = "patched"; },
  readablePush: () => { (stream.Readable.prototype as any).push = () => "patched"; },
  readablePrototypeProto: () => { (Object.getPrototypeOf(Readable.prototype) as any).extra = "patched"; },
  httpMethods: () => { (http.METHODS as any).push("PATCHED"); },
  httpStatusCodes: () => { (http.STATUS_CODES as any)[999] = "patched"; },
  utilTypes: () => { (util.types as any).isPromise = () => "patched"; },
  utilInspectCustom: () => { (util.inspect as any).defaultOptions.depth = 0; },
  eventsDefault: () => { (events as any).defaultMaxListeners = 1; },
  cryptoWebcrypto: () => { (crypto as any).webcrypto.extra = "patched"; },
  utilTextEncoderProto: () => { (util.TextDecoder.prototype as any).extra = "patched"; },
};

function view() {
  return {
    fsPromisesReadFile: String(fs.promises.readFile.name),
    fsPromisesConstants: String((fs.promises as any).constants.extra),
    fsConstants: String((fs.constants as any).extra),
    httpAgentPrototype: String((http.Agent.prototype as any).createConnection.name),
    httpAgentPrototypeAdded: String((http.Agent.prototype as any).extra),
    readablePush: String((stream.Readable.prototype as any).push.name),
    readablePrototypeProto: String((Object.getPrototypeOf(Readable.prototype) as any).extra),
    httpMethods: http.METHODS.length,
    httpStatusCodes: String((http.STATUS_CODES as any)[999]),
    utilTypes: String((util.types as any).isPromise.name),
    utilInspectCustom: String((util.inspect as any).defaultOptions.depth),
    eventsDefault: String((events as any).defaultMaxListeners),
    cryptoWebcrypto: String((crypto as any).webcrypto.extra),
    utilTextEncoderProto: String((util.TextDecoder.prototype as any).extra),
  };
}

export default (mode: string) => {
  if (mode === "look") return view();
  const refused: string[] = [];
  for (const [name, patch] of Object.entries(patches)) {
    try {
      patch();
    } catch {
      refused.push(name);
    }
  }
  return refused;
};
`;

Deno.test("what a call does to Node's objects deeper than a module's own is not there for the next call", async () => {
  const dir = new ToolDir();
  // Cold starts take seconds on a loaded machine; nothing here is about time.
  const runner = new ToolRunner({ maxWarmPerKey: 1, startTimeoutMs: 60_000 });
  try {
    const tool = dir.tool("node_deep_state", TOOL);
    const before = await runner.run(call(tool, "look", { timeoutMs: 60_000 }));
    assert.ok(before.ok, JSON.stringify(before) + (before.ok ? "" : before.failure.message));
    const patched = await runner.run(call(tool, "patch", { timeoutMs: 60_000 }));
    assert.ok(patched.ok, JSON.stringify(patched));
    const after = await runner.run(call(tool, "look", { timeoutMs: 60_000 }));
    assert.ok(after.ok, JSON.stringify(after));
    assert.equal(runner.stats().spawned, 1, "the three calls ran in one warm process");
    const was = before.output as Record<string, unknown>;
    const now = after.output as Record<string, unknown>;
    const differ = Object.keys(was).filter((k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]));
    assert.deepEqual(differ, [], `patched: ${JSON.stringify(patched.output)}; leaked into the next call`);
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
