/**
 * Freezes what a tool could patch to reach later calls of its warm worker (runs inside the worker, see
 * tool_worker.ts):
 * - the JavaScript intrinsics (`JSON`, `Array.prototype`, `Promise.prototype`, `Object.prototype`, …),
 *   through SES's `lockdown()` (npm `ses`, loaded by the bootstrap before this module runs);
 * - the host's own objects, which lockdown leaves writable (`Deno`, `console`, `fetch`, the timers,
 *   `crypto`, `navigator`, …), through `harden()`;
 * - the own keys of `globalThis`, which stay writable so that code can define globals: a snapshot taken
 *   once the tool has loaded is restored after every call.
 *
 * @module
 */

interface Ses {
  lockdown: (options: Record<string, string>) => void;
  harden: <T>(value: T) => T;
}

// Taken before any tool code runs: the restore must not use globals the tool may have replaced.
const { ownKeys, defineProperty, deleteProperty, getPrototypeOf, setPrototypeOf } = Reflect;
const { getOwnPropertyDescriptor, freeze, isFrozen, isExtensible } = Object;

/**
 * The host globals hardened after lockdown: the ones a tool would patch to watch or steer later calls.
 * Not every host class: hardening one whose constructor assigns over its own prototype's methods (Deno's
 * `MessagePort` sets `unref`) breaks it, the "override mistake" that lockdown tames for intrinsics only.
 */
const HOST_GLOBALS = [
  "Deno",
  "console",
  "fetch",
  "setTimeout",
  "setInterval",
  "clearTimeout",
  "clearInterval",
  "setImmediate",
  "clearImmediate",
  "queueMicrotask",
  "structuredClone",
  "crypto",
  "performance",
];

/**
 * Runs `lockdown()` and hardens the host globals. Deno builds some globals and their modules on first use,
 * and some of those modules extend shared objects as they load, which a frozen realm forbids. Measured
 * on Deno 2.9: fetch (with streams), the members of `Deno` and Node's `process` (with the Node layer:
 * `node:` imports after lockdown then work) break; WebSocket, BroadcastChannel, caches, compression
 * streams, URLPattern do not. So the caller sets `process` up first (or takes it away); here one fetch of
 * a `data:` URL is made and every member of `Deno` read, before lockdown.
 */
export async function freezeRealm(): Promise<void> {
  const ses = globalThis as unknown as Partial<Ses>;
  const lockdown = ses.lockdown;
  if (typeof lockdown !== "function") {
    throw new TypeError("SES lockdown was not loaded before the tool worker");
  }
  await (await fetch("data:,")).text();
  // The `Deno` namespace loads parts of itself on first use the same way (Deno.Command's module
  // redefines namespace members), and it is hardened below.
  for (const key of Reflect.ownKeys(Deno)) {
    try {
      (Deno as unknown as Record<PropertyKey, unknown>)[key];
    } catch {
      // A getter that needs a permission the tool lacks: nothing of it is needed.
    }
  }
  // SES looks for Node's `process` to read options from its env (a permission the tool may not have)
  // and to install handlers: hide it, every option is given here.
  const process = Object.getOwnPropertyDescriptor(globalThis, "process");
  if (process) Object.defineProperty(globalThis, "process", { value: undefined, configurable: true });
  try {
    lockdown({
      // The tool's errors keep their stacks: they are reported to the task.
      errorTaming: "unsafe",
      stackFiltering: "verbose",
      // tool_worker.ts owns console, uncaught errors and rejections.
      consoleTaming: "unsafe",
      errorTrapping: "none",
      unhandledRejectionTrapping: "none",
      reporting: "none",
      domainTaming: "unsafe",
      // Code generation from strings is off for the whole process (--disallow-code-generation-from-strings),
      // so `eval` is left as it is and fails with V8's own EvalError.
      evalTaming: "unsafe-eval",
      overrideTaming: "moderate",
      localeTaming: "unsafe",
    });
  } finally {
    if (process) Object.defineProperty(globalThis, "process", process);
  }
  // Defined by lockdown().
  const harden = ses.harden!;
  for (const key of HOST_GLOBALS) {
    const value = (globalThis as Record<string, unknown>)[key];
    if (value !== undefined) harden(value);
  }
  delete (globalThis as { lockdown?: unknown }).lockdown;
  delete (globalThis as { hardenIntrinsics?: unknown }).hardenIntrinsics;
  freezeHostClasses();
}

/**
 * Globals left as they are: the global object under its other names (its own keys are reset after each
 * call instead), and Node's `process`, whose setup and users assign to it (a known limit, see
 * docs/runtime-sandbox.md).
 */
const UNFROZEN_GLOBALS = new Set<PropertyKey>(["globalThis", "self", "window", "process"]);

/**
 * Freezes every other global (the host classes `MessagePort`, `EventTarget`, `Response`, `Headers`, `URL`,
 * `TextEncoder`, …, the instances `navigator`, `location`, and what lockdown does not know, such as
 * `FinalizationRegistry` and `DisposableStack`) with everything reachable from it: its prototype chain,
 * its properties' values, their accessors. Plus the prototypes that no global names: the iterators of
 * `Headers`, `FormData`, `URLSearchParams` and of streams. Done once per process, before the tool loads:
 * nothing to restore per call.
 *
 * A plain freeze breaks classes whose constructor assigns a property its prototype also holds (Deno's
 * `MessagePort` assigns `unref`: the "override mistake", which fails silently in sloppy code and throws in
 * strict code). So each writable data property of an object frozen here becomes an accessor first, whose
 * setter defines an own property on the instance it is called on and refuses the object itself: what
 * SES's override taming does for the intrinsics.
 */
function freezeHostClasses(): void {
  const roots: unknown[] = [];
  for (const key of ownKeys(globalThis)) {
    // Symbol-keyed own properties are Deno's state of the global object (its event listeners, …).
    if (typeof key === "symbol" || UNFROZEN_GLOBALS.has(key)) continue;
    const descriptor = getOwnPropertyDescriptor(globalThis, key)!;
    if ("value" in descriptor) {
      roots.push(descriptor.value);
      continue;
    }
    roots.push(descriptor.get, descriptor.set);
    try {
      // A lazy global builds its class on first read: build it now, so that it is frozen too.
      roots.push((globalThis as Record<PropertyKey, unknown>)[key]);
    } catch {
      // A getter that throws (Node's `process` for tools without it, one needing a permission) has
      // nothing to freeze.
    }
  }
  roots.push(...unnamedPrototypes());
  tameAndFreeze(roots);
}

/** Prototypes that no global names, reached through an instance. */
function unnamedPrototypes(): unknown[] {
  const iterables = [new Headers(), new FormData(), new URLSearchParams()];
  const found: unknown[] = iterables.map((it) => getPrototypeOf(it.entries()));
  found.push(getPrototypeOf(new ReadableStream().values()));
  found.push(getPrototypeOf(new ReadableStream().getReader()));
  return found;
}

/** Every object walked by {@linkcode tameAndFreeze}: each is walked once per process. */
const walked = new WeakSet<object>();

/**
 * Freezes, as {@linkcode freezeRealm} froze the host classes, the prototypes of an object the host made
 * for the tool (a connection, a listener) whose class no global names: called before the tool gets it.
 */
export function freezeShapeOf(resource: object): void {
  tameAndFreeze([getPrototypeOf(resource)]);
}

function tameAndFreeze(roots: unknown[]): void {
  const stack = [...roots];
  while (stack.length > 0) {
    const object = stack.pop();
    if ((typeof object !== "object" && typeof object !== "function") || object === null) continue;
    if (walked.has(object) || object === globalThis) continue;
    walked.add(object);
    // An object frozen already is walked too: a freeze is shallow, and not everything frozen before this
    // walk was frozen with what it reaches. SES's own `assert` global is frozen, but its `Fail` and
    // `string` were not: a call set properties on them, and the next call read them (break attempt brk39).
    // Walking the intrinsics too is ~2,300 objects more, once per process: a walk of them took 13 ms at load 13.
    for (const key of ownKeys(object)) {
      const descriptor = getOwnPropertyDescriptor(object, key);
      if (descriptor === undefined) continue;
      if (!("value" in descriptor)) {
        stack.push(descriptor.get, descriptor.set);
        continue;
      }
      stack.push(descriptor.value);
      if (descriptor.writable && descriptor.configurable) tame(object, key, descriptor);
    }
    stack.push(getPrototypeOf(object));
    if (!isFrozen(object)) freeze(object);
  }
}

/**
 * Turns a writable data property into an accessor pair: reads give the value, an assignment through an
 * instance defines the instance's own property (as it would have), an assignment to the object itself
 * fails. The two functions are frozen here, not walked: they are methods of this module, whose own
 * properties are `length` and `name` and whose prototype is `Function.prototype` (hardened by lockdown), so
 * walking them found nothing more to freeze. They were ~1,300 of the walk's ~4,450 objects in every fresh
 * sandbox (docs/performance.md, "Cold sandbox start").
 */
function tame(object: object, key: PropertyKey, descriptor: PropertyDescriptor): void {
  const value = descriptor.value;
  const accessors = {
    get(): unknown {
      return value;
    },
    set(this: unknown, next: unknown): void {
      if (this === object || (typeof this !== "object" && typeof this !== "function") || this === null) {
        throw new TypeError(`Cannot assign to read only property '${String(key)}' of a frozen host object`);
      }
      defineProperty(this, key, { value: next, writable: true, enumerable: true, configurable: true });
    },
  };
  defineProperty(object, key, {
    get: accessors.get,
    set: accessors.set,
    enumerable: descriptor.enumerable,
    configurable: false,
  });
  tamed.set(accessors.get, value);
  for (const accessor of [accessors.get, accessors.set]) {
    walked.add(accessor);
    freeze(accessor);
  }
}

/** The getters {@linkcode tame} made, with the value each gives. */
const tamed = new WeakMap<object, unknown>();

/**
 * Whether `now` is the accessor pair {@linkcode tame} made of the data property `was`, giving its value: the
 * sandbox froze the object after `was` was recorded (node_guard.ts), which changes nothing a call sees.
 */
export function tamedFrom(now: PropertyDescriptor, was: PropertyDescriptor): boolean {
  return "value" in was && now.get !== undefined && tamed.has(now.get) && tamed.get(now.get) === was.value;
}

/**
 * Records the own properties of `globalThis`; the returned function puts them back: keys added since are
 * deleted, changed ones redefined. It returns undefined when everything is back, or what could not be put
 * back: a call can make a global non-configurable (`Object.defineProperty(globalThis, "structuredClone",
 * { value: fake, configurable: false })`) or the global object non-extensible (`Object.preventExtensions`
 * after deleting `atob`), and the next call, maybe for another execution, saw its value (red team brk-sbx
 * H5). The caller must then retire the worker.
 *
 * Making the globals non-configurable and `globalThis` non-extensible instead would spare this per-call
 * work, but Deno's own lazily loaded parts redefine globals on first use (a first `MessageChannel` deletes
 * `queueMicrotask` from a global scope object), so a tool would meet errors of Deno's making.
 */
export function snapshotGlobals(): () => string | undefined {
  const saved: Array<[PropertyKey, PropertyDescriptor]> = [];
  const known = new Set<PropertyKey>();
  for (const key of ownKeys(globalThis)) {
    saved.push([key, getOwnPropertyDescriptor(globalThis, key)!]);
    known.add(key);
  }
  const extensible = isExtensible(globalThis);
  const prototype = getPrototypeOf(globalThis);
  return () => {
    const failed: string[] = [];
    // A proxy a call made the global object's prototype answered, in later calls, for every name the global
    // object inherits (`dispatchEvent`, `addEventListener`) or lacks (`typeof Bun`), and its trap saw their
    // arguments (break attempt brk41). First: a failed put-back of the keys must not skip it.
    if (getPrototypeOf(globalThis) !== prototype && !setPrototypeOf(globalThis, prototype)) {
      failed.push("the global object's prototype");
    }
    for (const key of ownKeys(globalThis)) {
      if (!known.has(key) && !deleteProperty(globalThis, key)) failed.push(`${String(key)} (added)`);
    }
    for (const [key, was] of saved) {
      const now = getOwnPropertyDescriptor(globalThis, key);
      if (now === undefined || !sameDescriptor(now, was)) {
        if (!defineProperty(globalThis, key, was)) failed.push(String(key));
      }
    }
    // Not checked before the keys: a call that made it non-extensible but deleted nothing is caught here.
    if (isExtensible(globalThis) !== extensible) failed.push("the global object's extensibility");
    return failed.length === 0
      ? undefined
      : `the global object, which could not be reset (${failed.slice(0, 3).join(", ")})`;
  };
}

/** Whether a property is as it was: its value or accessors, and its attributes (a call may pin one). */
function sameDescriptor(now: PropertyDescriptor, was: PropertyDescriptor): boolean {
  return now.value === was.value && now.get === was.get && now.set === was.set &&
    now.writable === was.writable && now.enumerable === was.enumerable &&
    now.configurable === was.configurable;
}
