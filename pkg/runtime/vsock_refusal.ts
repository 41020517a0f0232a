/**
 * The refusal of vsock, the socket family between a virtual machine and its host, in every sandbox: a tool's
 * worker (tool_worker.ts) and a `script` MCP server's process (mcp_transport.ts, through its prelude). With
 * it, the refusal of SOCKS proxies for `Deno.createHttpClient`, the other proxy Deno lets past its deny list.
 *
 * @module
 */

/**
 * Replaces the Deno APIs that reach vsock with ones that throw `NotCapable`, naming the API, before Deno
 * sees the call. No sandbox is given `--unstable-vsock`, and without it Deno does one of two things:
 * - `Deno.connect({ transport: "vsock" })`, `Deno.listen` of it and `Deno.serve({ cid })` (which listens on
 *   vsock when `cid` is an own option) end the whole process with exit code 70 instead of throwing: a tool's
 *   call failed `tool_crashed` and a retry policy ran it again, to the same end (outside break attempt
 *   sbx29); a script server died the same way;
 * - `Deno.createHttpClient({ proxy: { transport: "vsock", cid, port } })` needs no flag at all: granted
 *   `net: true`, a tool opened an `AF_VSOCK` socket to the VM host (cid 2) and sent its requests there, past
 *   the deny list, which names addresses and ports (issue 10, sbx).
 *
 * Deno gets options it cannot be steered past the check by: the value checked is the value Deno reads, read
 * once (a getter or a Proxy answering "tcp" to the check and "vsock" to Deno has nothing left to answer).
 * `transport` becomes an own value of a fresh object inheriting the rest; a client's options and its proxy's
 * are copied whole, since Deno reads them as own properties only (a proxy's kind from the keys it has).
 *
 * Self-contained (it uses its arguments and the intrinsics it takes at once only): a script server's prelude
 * embeds its source, since that process loads none of the runtime's files (mcp_transport.ts).
 *
 * @param where the sandbox, as the error's message names it: `a tool sandbox`.
 */
export function refuseVsock(deno: typeof Deno, where: string): void {
  const NotCapable = deno.errors.NotCapable;
  // Taken now: a script server's own code runs in an unfrozen realm and could replace them.
  const create = Object.create;
  const hasOwn = Object.hasOwn;
  const keys = Object.keys;
  const api = deno as unknown as Record<string, (...args: unknown[]) => unknown>;
  // A function is an object to Deno: its options and a proxy's are read off one, so a function carrying
  // `transport` or `url` must be checked like a plain object (outside break attempt brk33: before, a
  // function-typed proxy reached a SOCKS proxy and vsock, and function-typed options to `Deno.connect` ended
  // the process).
  const isObject = (value: unknown): value is object =>
    (typeof value === "object" && value !== null) || typeof value === "function";
  const refuse = (call: string): never => {
    throw new NotCapable(
      `${call} is refused in ${where}: vsock is an unstable Deno API (--unstable-vsock), never enabled there`,
    );
  };
  for (const name of ["connect", "listen"]) {
    const original = api[name];
    api[name] = (options?: unknown, ...rest: unknown[]) => {
      if (!isObject(options)) return original(options, ...rest);
      const transport = (options as { transport?: unknown }).transport;
      if (transport === "vsock") refuse(`Deno.${name}({ transport: "vsock" })`);
      return original(create(options, { transport: { value: transport, enumerable: true } }), ...rest);
    };
  }
  const serve = api.serve;
  api.serve = (options?: unknown, ...rest: unknown[]) => {
    // Deno takes a function first argument as the handler and ignores what follows it.
    if (typeof options !== "object" || options === null) return serve(options, ...rest);
    if (hasOwn(options, "cid")) refuse("Deno.serve({ cid })");
    const own: PropertyDescriptorMap = {};
    if (hasOwn(options, "path")) own.path = { value: (options as { path?: unknown }).path, enumerable: true };
    return serve(create(options, own), ...rest);
  };
  // Deno reads a client's options as own properties (its Rust side ignores inherited ones): each own option is
  // copied, read once, onto a fresh object, writable since Deno's own code fills in defaults (`caCerts`).
  const toText = String;
  // Deno checks a SOCKS proxy's host as written, neither resolved nor normalized, and its connector then
  // resolves it: `socks5://127.1:4222`, `socks5://0:…`, `socks5://2130706433:…` or a host name of this
  // machine reached the NATS port past `--deny-net` (issue 10, rt33). An `http`/`https` proxy is checked
  // like any connection. The scheme is read as the URL parser Deno uses reads it (tabs and line breaks
  // dropped anywhere, C0 controls and spaces before it trimmed, any case), by indexing: no method or RegExp
  // of a script server's unfrozen realm is called.
  const upper: Record<string, string> = { h: "H", t: "T", p: "P", s: "S" };
  const webProxy = (url: string): boolean => {
    let scheme = "";
    for (let i = 0; i < url.length; i++) {
      const c = url[i];
      if (c === "\t" || c === "\n" || c === "\r" || (scheme === "" && c <= " ")) continue;
      if (c === ":") break;
      const expected = "https"[scheme.length];
      if (expected === undefined || (c !== expected && c !== upper[expected])) return false;
      scheme += expected;
    }
    return scheme === "http" || scheme === "https";
  };
  const createHttpClient = api.createHttpClient;
  api.createHttpClient = (options?: unknown, ...rest: unknown[]) => {
    if (!isObject(options)) return createHttpClient(options, ...rest);
    const own: Record<string, unknown> = { ...options };
    if (isObject(own.proxy)) {
      own.proxy = { ...own.proxy };
      const proxy = own.proxy as { transport?: unknown; url?: unknown };
      if (proxy.transport === "vsock") refuse('Deno.createHttpClient({ proxy: { transport: "vsock" } })');
      if (proxy.url !== undefined) {
        const url = toText(proxy.url);
        proxy.url = url;
        if (!webProxy(url)) {
          throw new NotCapable(
            `Deno.createHttpClient({ proxy: { url } }) is refused in ${where} for a proxy other than http or ` +
              `https: Deno checks a SOCKS proxy's address as written, not the one it connects to`,
          );
        }
      }
    }
    const values: PropertyDescriptorMap = {};
    for (const key of keys(own)) {
      values[key] = { value: own[key], enumerable: true, writable: true, configurable: true };
    }
    return createHttpClient(create(options, values), ...rest);
  };
}
