/**
 * Host classes are frozen before the tool loads (issue 10, follow-up): lockdown freezes the JavaScript
 * intrinsics only, so a call could patch `MessagePort.prototype`, `Response.prototype`, `URL.prototype`, …
 * and the patch acted in the next call of the same warm worker. Each family here is attacked by one call;
 * the next call, in the same process, must see exactly what a fresh process saw. Real sandbox processes.
 */
import assert from "node:assert/strict";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { call, ToolDir } from "./_helpers.ts";

/** One attack per family: each replaces a method or accessor that the check below uses. */
const ATTACKS: Record<string, string> = {
  MessagePort: `MessagePort.prototype.postMessage = function () { (globalThis as any).stolen = 1; }`,
  EventTarget: `EventTarget.prototype.addEventListener = function () {}`,
  Event: `Object.defineProperty(Event.prototype, "type", { get: () => "pwned" })`,
  Response: `Response.prototype.text = async function () { return "pwned"; }`,
  Request: `Object.defineProperty(Request.prototype, "url", { get: () => "https://evil.example/" })`,
  Headers: `Headers.prototype.get = function () { return "pwned"; }`,
  HeadersIterator:
    `Object.getPrototypeOf(new Headers().entries()).next = function () { return { done: true, value: undefined }; }`,
  URL: `Object.defineProperty(URL.prototype, "hostname", { get: () => "evil.example" })`,
  URLSearchParams: `URLSearchParams.prototype.get = function () { return "pwned"; }`,
  TextEncoder: `TextEncoder.prototype.encode = function () { return new Uint8Array([1]); }`,
  TextDecoder: `TextDecoder.prototype.decode = function () { return "pwned"; }`,
  Blob: `Blob.prototype.text = async function () { return "pwned"; }`,
  AbortController: `AbortController.prototype.abort = function () {}`,
  FinalizationRegistry: `FinalizationRegistry.prototype.register = function () {}`,
  WeakRef: `WeakRef.prototype.deref = function () { return "pwned"; }`,
  DisposableStack: `DisposableStack.prototype.use = function () { return "pwned"; }`,
  navigator: `Object.defineProperty(navigator, "hardwareConcurrency", { value: -1 })`,
  WorkerGlobalScope: `Object.defineProperty(Object.getPrototypeOf(globalThis), "onmessage", { value: 1 })`,
  staticMethod: `(Response as any).json = function () { return "pwned"; }`,
};

const TOOL = `
const ATTACKS: Record<string, () => void> = {
${Object.entries(ATTACKS).map(([name, code]) => `  ${JSON.stringify(name)}: () => { ${code}; },`).join("\n")}
};
export default async (mode: string) => {
  if (mode === "patch") {
    const applied: string[] = [];
    for (const [name, attack] of Object.entries(ATTACKS)) {
      try { attack(); applied.push(name); } catch { /* refused: the object is frozen */ }
    }
    return { applied, pid: Deno.pid };
  }
  const channel = new MessageChannel();
  const received = new Promise((resolve) => { channel.port1.onmessage = (e) => resolve(e.data); });
  channel.port2.postMessage("through the port");
  const target = new EventTarget();
  let heard = "";
  target.addEventListener("ping", (e) => { heard = e.type; });
  target.dispatchEvent(new Event("ping"));
  const headers = new Headers({ a: "1" });
  const controller = new AbortController();
  controller.abort();
  const stack = new DisposableStack();
  const disposable = { [Symbol.dispose]() {} };
  const result = {
    port: await received,
    stolen: (globalThis as any).stolen ?? null,
    event: heard,
    response: await new Response("body").text(),
    responseJson: await (Response.json({ x: 1 }) as Response).text(),
    request: new Request("https://example.com/a").url,
    header: headers.get("a"),
    headerEntries: [...headers.entries()],
    hostname: new URL("https://example.com/x").hostname,
    search: new URLSearchParams("q=1").get("q"),
    encoded: [...new TextEncoder().encode("hi")],
    decoded: new TextDecoder().decode(new Uint8Array([104, 105])),
    blob: await new Blob(["blob"]).text(),
    aborted: controller.signal.aborted,
    weakRef: new WeakRef(headers).deref() === headers,
    disposable: stack.use(disposable) === disposable,
    cores: navigator.hardwareConcurrency > 0,
    onmessage: typeof Object.getOwnPropertyDescriptor(Object.getPrototypeOf(globalThis), "onmessage")?.get,
  };
  channel.port1.close();
  return { result, pid: Deno.pid };
};
`;

Deno.test("a call's patches of host classes never reach the next call of its worker", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool("host_patcher", TOOL);
    const run = async (mode: string) => {
      const result = await runner.run(call(tool, mode));
      assert.ok(result.ok, JSON.stringify(!result.ok && result.failure.message));
      return result.output as { result?: unknown; applied?: string[]; pid: number };
    };
    const pristine = await run("check");
    assert.equal((pristine.result as { port: string }).port, "through the port");
    const patched = await run("patch");
    assert.equal(patched.pid, pristine.pid, "the same warm worker");
    assert.deepEqual(patched.applied, [], "every patch of a host class is refused");
    const after = await run("check");
    assert.equal(after.pid, pristine.pid, "the same warm worker");
    assert.deepEqual(after.result, pristine.result, "the next call sees the pristine host classes");
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("frozen host classes still work for subclasses and instances that set own properties", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxWarmPerKey: 1 });
  try {
    const tool = dir.tool(
      "host_user",
      `class Ping extends Event { constructor() { super("ping"); } }
       class Store extends EventTarget { count = 0; }
       export default () => {
         const store = new Store();
         store.addEventListener("ping", () => store.count++);
         store.dispatchEvent(new Ping());
         const port = new MessageChannel().port1;
         (port as any).postMessage = () => "own";  // an instance's own property, over the prototype's method
         const url = new URL("https://example.com/");
         url.pathname = "/p";                      // a setter of the prototype, on the instance
         return { count: store.count, own: (port as any).postMessage(), url: url.href };
       };`,
    );
    for (let i = 0; i < 2; i++) {
      const result = await runner.run(call(tool, null));
      assert.deepEqual(result.ok && result.output, { count: 1, own: "own", url: "https://example.com/p" });
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});
