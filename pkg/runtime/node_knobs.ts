/**
 * Settings of the whole worker that Node's modules keep in their closures, out of reach of the put-back of
 * their objects (node_guard.ts), which sees properties only (runs inside the worker, see tool_worker.ts).
 * One call set them, and every later call of the warm process, another execution's, ran under them (outside
 * break attempt brk44):
 *
 * - `http.setGlobalProxyFromEnv({ HTTP_PROXY })` sent every later `node:http` request of the worker, with its
 *   headers (an `Authorization` holding the call's token), to the proxy one call chose;
 * - `tls.setDefaultCACertificates([pem])` made every later `node:tls`/`node:https` connection trust the
 *   certificate one call chose, and no other;
 * - `dns.setDefaultResultOrder`, `net.setDefaultAutoSelectFamily` (and its attempt timeout) and
 *   `stream.setDefaultHighWaterMark` steered how later calls connect and buffer.
 *
 * The first two are refused: no getter tells what they hold without a permission no tool has (`sys`), so
 * they cannot be put back; a call that needs a proxy or its own authority passes an `agent` or `ca` of its
 * own to its requests. The others have getters, and are put back after each call (`nodeKnobs`).
 *
 * @module
 */

/** A knob refused on the module's object, with the module that holds it. */
const REFUSED: ReadonlyArray<[module: string, name: string, why: string]> = [
  ["http", "setGlobalProxyFromEnv", "it sends every later call's requests through a proxy"],
  ["tls", "setDefaultCACertificates", "it sets the authorities every later call's connections trust"],
];

/** A getter and setter of one knob, called with `args` before the value (`getDefaultHighWaterMark(false)`). */
const PUT_BACK: ReadonlyArray<[getter: string, setter: string, args: readonly unknown[]]> = [
  ["getDefaultResultOrder", "setDefaultResultOrder", []],
  ["getDefaultAutoSelectFamily", "setDefaultAutoSelectFamily", []],
  ["getDefaultAutoSelectFamilyAttemptTimeout", "setDefaultAutoSelectFamilyAttemptTimeout", []],
  ["getDefaultHighWaterMark", "setDefaultHighWaterMark", [false]],
  ["getDefaultHighWaterMark", "setDefaultHighWaterMark", [true]],
];

/**
 * Replaces the refused knobs of a built-in's object (its default export, as `import http from "node:http"`
 * and `process.getBuiltinModule` give it) with `refuse`, not writable and not configurable, before the tool
 * holds the object. A no-op on an object done already. `tls.setDefaultCACertificates` is also a named export,
 * which no patch reaches: the import policy refuses the ways to it (import_scan.ts, `refusedNamedExports`).
 */
export function refuseModuleKnobs(builtin: unknown, refuse: (what: string) => never): void {
  if ((typeof builtin !== "object" && typeof builtin !== "function") || builtin === null) return;
  for (const [module, name, why] of REFUSED) {
    const descriptor = Object.getOwnPropertyDescriptor(builtin, name);
    if (descriptor === undefined || !descriptor.configurable) continue;
    Object.defineProperty(builtin, name, {
      value: () => refuse(`${module}.${name} (${why})`),
      writable: false,
      enumerable: descriptor.enumerable,
      configurable: false,
    });
  }
}

/** A knob's getter and setter, called with `args` before the value. */
export interface NodeKnob {
  getter: (...args: unknown[]) => unknown;
  setter: (...args: unknown[]) => unknown;
  args: readonly unknown[];
}

/**
 * The knobs a built-in holds that can be put back, read from its named exports (`namespace`, bindings the
 * tool cannot replace) or else from its default export's properties (`process.getBuiltinModule`).
 */
export function nodeKnobs(namespace: object): NodeKnob[] {
  const exports = namespace as Record<string, unknown>;
  const fallback = exports.default as Record<string, unknown> | undefined;
  const knobs: NodeKnob[] = [];
  for (const [getterName, setterName, args] of PUT_BACK) {
    const getter = functionNamed(exports, getterName) ?? functionNamed(fallback, getterName);
    const setter = functionNamed(exports, setterName) ?? functionNamed(fallback, setterName);
    if (getter !== undefined && setter !== undefined) knobs.push({ getter, setter, args });
  }
  return knobs;
}

function functionNamed(
  holder: Record<string, unknown> | undefined,
  name: string,
): ((...args: unknown[]) => unknown) | undefined {
  if ((typeof holder !== "object" && typeof holder !== "function") || holder === null) return undefined;
  const value = Object.getOwnPropertyDescriptor(holder, name)?.value;
  return typeof value === "function" ? value as (...args: unknown[]) => unknown : undefined;
}
