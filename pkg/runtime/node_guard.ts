/**
 * Puts Node's objects back after each call (runs inside the worker, see tool_worker.ts): Node's `process`,
 * its `stdout`/`stderr`, and the objects of the `node:` built-in modules the tool uses, with the prototypes
 * of the classes they export (`EventEmitter.prototype`, `fs.ReadStream.prototype`, …).
 *
 * They cannot be frozen like the host classes (global_guard.ts): Node's own code assigns to them as it runs
 * (`process.exitCode`, lazily built members), and freezing what they reach would freeze live state (an
 * HTTP agent's socket lists). So each object's own properties are recorded before any call and restored
 * after every call, as the own keys of `globalThis` are: a function replaced, a property added or deleted
 * by a call is gone before the next. A listener a call added to `process` is removed. What the module's top
 * level did to them stays: it is the same for every call.
 *
 * @module
 */

import { tamedFrom } from "./global_guard.ts";
import { nodeKnobs } from "./node_knobs.ts";

const { ownKeys, defineProperty, deleteProperty, getPrototypeOf, setPrototypeOf, apply } = Reflect;
const { getOwnPropertyDescriptor, isFrozen, freeze, is } = Object;

interface Emitter {
  eventNames: () => Array<string | symbol>;
  rawListeners: (name: string | symbol) => unknown[];
  removeListener: (name: string | symbol, listener: unknown) => unknown;
}

/** One object's own properties as recorded. */
interface Recorded {
  object: object;
  keys: Set<PropertyKey>;
  saved: Array<[PropertyKey, PropertyDescriptor]>;
  /** Its prototype as recorded (undefined: a proxy's trap refused to say, so it is not put back). */
  prototype: object | null | undefined;
}

/** A value Node keeps behind an accessor pair (in a closure), as it was. */
interface RecordedAccessor {
  object: object;
  get: () => unknown;
  set: (value: unknown) => void;
  value: unknown;
}

/**
 * An HTTP agent's own properties that are live state (its sockets and requests), never put back. Its
 * listener map (`_events`, `_eventsCount`) is put back like `process`'s: Node adds its listeners to an agent
 * when it makes it, never for a request, and a call that replaced the map (an accessor or a proxy answering
 * the put-back and Node's `emit` differently) kept a listener on it for later calls (brk44).
 */
const AGENT_LIVE_KEYS = new Set<PropertyKey>([
  "requests",
  "sockets",
  "freeSockets",
  "totalSocketCount",
]);

/** Levels below a module's exports that are recorded (`fs` → `promises` → `constants` is two). */
const MAX_DEPTH = 4;
/** Passes over the emitters before a call's handlers that keep re-adding listeners are given up on. */
const MAX_LISTENER_PASSES = 8;

/** `EventEmitter.prototype`'s own methods the put-back of listeners calls (see `useEmitterMethods`). */
interface EmitterMethods {
  eventNames: (this: object) => Array<string | symbol>;
  rawListeners: (this: object, name: string | symbol) => unknown[];
  removeListener: (this: object, name: string | symbol, listener: unknown) => unknown;
}

export class NodeStateGuard {
  /**
   * The methods the listeners of the recorded emitters are read and removed with, taken before any tool
   * code: through the emitter, a call's own `eventNames` on `http.globalAgent`, or its
   * `EventEmitter.prototype.rawListeners`, in place until the put-back of properties after the listeners',
   * hid the listener it added, which then heard the next call's requests, `Authorization` header included
   * (outside break attempt brk44).
   */
  #emitterMethods: EmitterMethods | undefined;

  /** Sets the methods of Node's `EventEmitter.prototype` as they are before any tool code runs. */
  useEmitterMethods(prototype: EmitterMethods): void {
    const { eventNames, rawListeners, removeListener } = prototype;
    this.#emitterMethods = { eventNames, rawListeners, removeListener };
  }

  #eventNames(emitter: object): Array<string | symbol> {
    return apply(this.#methods().eventNames, emitter, []);
  }

  #rawListeners(emitter: object, name: string | symbol): unknown[] {
    return apply(this.#methods().rawListeners, emitter, [name]);
  }

  #methods(): EmitterMethods {
    if (this.#emitterMethods === undefined) {
      throw new Error("the emitters' listeners are recorded before EventEmitter's methods were given");
    }
    return this.#emitterMethods;
  }

  readonly #recorded: Recorded[] = [];
  readonly #seen = new WeakSet<object>();
  readonly #accessors: RecordedAccessor[] = [];
  /** The knobs recorded (node_knobs.ts): each getter with the arguments it was recorded for. */
  readonly #knobs = new Map<object, Set<string>>();
  /** Recorded objects that are prototypes (a class's, or inherited by a recorded object). */
  readonly #prototypes = new WeakSet<object>();
  /** Emitters whose listeners are put back (`process`, the HTTP agents), with the listeners they had. */
  readonly #emitters: Array<[Emitter, Map<string | symbol, Set<unknown>>]> = [];

  /** Records `process` (with its stdout and stderr) and its listeners as they are now. */
  recordProcess(process: object): void {
    this.#recordObject(process, true);
    // What `process` holds (`process.versions`, `process.hrtime.bigint`, …), as for a module: a tool that
    // names `process` without importing `node:process` had none of it put back, and a call's
    // `process.hrtime.bigint = …` or `process.versions.node = …` held for the next call (break attempt brk41).
    this.recordModule(process);
    for (const key of ["stdout", "stderr"]) {
      // Accessors of Node's: read once here, they build the stream (our stdout/stderr writers are on it).
      const stream = (process as Record<string, unknown>)[key];
      if (typeof stream !== "object" || stream === null) continue;
      this.#recordObject(stream, true);
      // A listener a call added to the stream heard a later call's `emit` on it (brk41).
      if (typeof (stream as Partial<Emitter>).eventNames === "function") {
        this.#recordListeners(stream as Emitter);
      }
    }
    this.#recordListeners(process as Emitter);
  }

  /**
   * The emitter's `_events` is among the own properties put back after a call, so its entries are put back
   * too, see restoreListenerMaps.
   */
  #recordListeners(emitter: Emitter): void {
    this.#emitters.push([
      emitter,
      new Map(this.#eventNames(emitter).map((name) => [name, new Set(this.#rawListeners(emitter, name))])),
    ]);
    const events = (emitter as { _events?: Record<PropertyKey, unknown> | null })._events;
    if (typeof events === "object" && events !== null) {
      this.#listenerMaps.push({
        emitter,
        prototype: getPrototypeOf(events),
        entries: new Map(ownKeys(events).map((key) => [key, events[key]])),
      });
    }
  }

  /**
   * The prototype of each recorded emitter's listener map (`_events`, which Node makes with none): a call
   * that gave `process._events` or `http.globalAgent._events` one holding a listener had it run for every
   * later call's `emit` of that name, another execution's, with its arguments, and the put-back of listeners
   * reads only the map's own keys (break attempt brk41).
   */
  readonly #listenerMaps: Array<
    { emitter: object; prototype: object | null; entries: Map<PropertyKey, unknown> }
  > = [];

  /**
   * After the own properties: `_events` is the map the emitter was recorded with again. Its entries are put
   * back too where the map itself is: when a call's removal took an emitter's last listener away, Node
   * swapped in a new map, and the put-back then restored the recorded one, which still held the call's
   * listener (a listener on `process.stdout` heard the next call's `emit`, brk41).
   */
  #restoreListenerMaps(failed: string[]): void {
    for (const { emitter, prototype, entries } of this.#listenerMaps) {
      const events = (emitter as { _events?: unknown })._events;
      if (typeof events !== "object" || events === null) continue;
      if (getPrototypeOf(events) !== prototype && !setPrototypeOf(events, prototype)) {
        failed.push("an emitter's listener map");
      }
      for (const key of ownKeys(events)) {
        if (!entries.has(key) && !deleteProperty(events, key)) failed.push("an emitter's listener map");
      }
      for (const [key, value] of entries) {
        const now = getOwnPropertyDescriptor(events, key);
        if (now !== undefined && now.value === value) continue;
        const entry = { value, writable: true, enumerable: true, configurable: true };
        if (!defineProperty(events, key, entry)) failed.push("an emitter's listener map");
      }
    }
  }

  /**
   * Records a built-in module: its namespace's default export and the values of its exports, then what
   * those hold, down to {@linkcode MAX_DEPTH} levels (`fs.promises.constants`, `http.METHODS`,
   * `util.inspect.defaultOptions`), with the prototype chains of the classes among them
   * (`http.Agent.prototype`, `stream.Readable.prototype` and what they inherit). A value behind an accessor
   * pair of Node's (`events.defaultMaxListeners`, kept in a closure) is read now and set back after a call.
   */
  recordModule(namespace: object): void {
    let level: unknown[] = [];
    for (const key of ownKeys(namespace)) level.push(getOwnPropertyDescriptor(namespace, key)?.value);
    for (let depth = 0; depth <= MAX_DEPTH && level.length > 0; depth++) {
      const next: unknown[] = [];
      for (const value of level) {
        for (const object of this.#recordObject(value)) {
          if (depth < MAX_DEPTH) this.#children(object, next);
        }
      }
      level = next;
    }
    const exports = getOwnPropertyDescriptor(namespace, "default")?.value as
      | Record<string, unknown>
      | undefined;
    const agent = exports?.globalAgent;
    if (typeof agent === "object" && agent !== null && !this.#seen.has(agent)) this.#recordAgent(agent);
    this.#recordUnexported(exports);
    this.#recordKnobs(namespace);
  }

  /**
   * The settings the module keeps in a closure behind a getter and a setter function
   * (`dns.setDefaultResultOrder`, `net.setDefaultAutoSelectFamily`, `stream.setDefaultHighWaterMark`): read
   * now and set back after a call, like a value behind an accessor pair (node_knobs.ts). Each once: a module
   * reached again through `process.getBuiltinModule` adds none.
   */
  #recordKnobs(namespace: object): void {
    const { apply } = Reflect;
    for (const { getter, setter, args } of nodeKnobs(namespace)) {
      const key = args.map(String).join();
      const keys = this.#knobs.get(getter) ?? new Set<string>();
      if (keys.has(key)) continue;
      keys.add(key);
      this.#knobs.set(getter, keys);
      const get = () => apply(getter, undefined, args);
      const set = (value: unknown) => void apply(setter, undefined, [...args, value]);
      this.#accessors.push({ object: namespace, get, set, value: get() });
    }
  }

  /**
   * Records the prototype chain of an instance Node hands out, when its prototype is not recorded yet: the
   * classes a module does not export (`node:fs/promises`' `FileHandle`), whose methods a call replaced for
   * every later call of the worker, where they saw that call's data (brk41). tool_worker.ts calls this as
   * each emitter is made (`EventEmitter.init`), before the tool holds it.
   */
  recordInstance(instance: object): void {
    const prototype = prototypeOrUndefined(instance);
    if (prototype !== null && prototype !== undefined) this.recordPrototype(prototype);
  }

  /** Records a prototype (and its chain) as it is now, unless it is recorded already. */
  recordPrototype(prototype: object): void {
    if (!this.#seen.has(prototype)) this.#recordObject(prototype, true, true);
  }

  /**
   * Objects of classes no module exports that are not emitters (see {@linkcode recordInstance}): one of each
   * is made once, when the module that makes them is recorded, to record their prototypes (brk41: a call
   * replaced `export` on `SecretKeyObject.prototype`, or `record` on a `perf_hooks` histogram's, and the next
   * call's key or values went through it). `node:crypto`'s key objects, `node:perf_hooks`' histograms and
   * `node:tls`' secure contexts; a maker that fails here (a permission, a crypto layer without ed25519)
   * leaves its class unrecorded.
   */
  #recordUnexported(exports: Record<string, unknown> | undefined): void {
    const makers: Array<[string, (make: (...args: unknown[]) => unknown) => unknown[]]> = [
      ["createSecretKey", (make) => [make(new Uint8Array(16))]],
      ["generateKeyPairSync", (make) => Object.values(make("ed25519") as object)],
      ["createHistogram", (make) => [make()]],
      ["createSecureContext", (make) => [make()]],
    ];
    for (const [name, sample] of makers) {
      const make = exports?.[name];
      if (typeof make !== "function") continue;
      try {
        for (const made of sample(make as (...args: unknown[]) => unknown)) {
          if (typeof made === "object" && made !== null) this.recordInstance(made);
        }
      } catch {
        // Not recorded: see above.
      }
    }
  }

  /**
   * `http.globalAgent` and `https.globalAgent` are instances every request of the worker shares: a call
   * that set `maxSockets`, `keepAlive`, an `options.lookup` or a `createConnection` of its own, or added a
   * listener, steered the requests of every later call. Their own properties, their `options` and their
   * listeners are put back like a module's; the socket lists and counts are live state and are left (the
   * call's sockets are closed when it ends, call_scope.ts).
   */
  #recordAgent(agent: object): void {
    this.#seen.add(agent);
    const keys = ownKeys(agent);
    const saved: Array<[PropertyKey, PropertyDescriptor]> = [];
    for (const key of keys) {
      const d = getOwnPropertyDescriptor(agent, key)!;
      if (!AGENT_LIVE_KEYS.has(key) && (d.configurable || d.writable)) saved.push([key, d]);
    }
    this.#recorded.push({
      object: agent,
      keys: new Set(keys),
      saved,
      prototype: prototypeOrUndefined(agent),
    });
    this.#recordObject((agent as { options?: unknown }).options, true);
    if (typeof (agent as Partial<Emitter>).eventNames === "function") {
      this.#recordListeners(agent as Emitter);
    }
  }

  /**
   * Pushes the values `object` holds, reading its accessors (a getter that throws holds nothing). The
   * methods of a prototype are frozen instead of recorded: they are most of what a module reaches, putting
   * them back would double the cost of every call, and nothing of Node's assigns to a method. A prototype's
   * accessors are not read: they expect an instance.
   */
  #children(object: object, into: unknown[]): void {
    const prototype = this.#prototypes.has(object);
    for (const key of ownKeys(object)) {
      const descriptor = getOwnPropertyDescriptor(object, key);
      if (descriptor === undefined) continue;
      if ("value" in descriptor) {
        if (!prototype) into.push(descriptor.value);
        else if (typeof descriptor.value === "function" && !this.#seen.has(descriptor.value)) {
          this.#freezeMethod(descriptor.value, into);
        }
        continue;
      }
      if (prototype) continue;
      const { get, set } = descriptor;
      if (get === undefined) continue;
      let value: unknown;
      try {
        value = get.call(object);
      } catch {
        continue;
      }
      const isObject = (typeof value === "object" || typeof value === "function") && value !== null;
      if (isObject) into.push(value);
      // An object behind a pair is set back too when the getter gives the same one each time: a call's
      // `http.globalAgent = new Agent()` went through the setter to Node's closure, and the put-back of the
      // recorded agent's properties never saw the new one, which heard every later call's requests (brk44).
      if (set !== undefined && (!isObject || sameEachRead(get, object, value))) {
        this.#accessors.push({ object, get, set, value });
      }
    }
  }

  /**
   * Freezes a method of a prototype with the objects it holds, or, when it holds more than a method does,
   * passes it on to be recorded. A freeze is shallow: a method frozen alone kept its `prototype` object (a
   * function's default one) and, for a class reached as a prototype's `constructor`, its statics and their
   * objects open to any call, and a frozen function is never recorded (break attempt brk39: 170 such
   * objects under `crypto`, `http` and `stream`). A plain method (own objects: at most its default
   * `prototype`; its own prototype frozen, an intrinsic's) is frozen with that `prototype`; any other
   * function (a class, a function with statics) is recorded like a module's value and put back per call.
   */
  #freezeMethod(method: object, into: unknown[]): void {
    const prototypeOf = getPrototypeOf(method);
    let plain = prototypeOf === null || isFrozen(prototypeOf);
    let defaultPrototype: object | undefined;
    for (const key of ownKeys(method)) {
      if (!plain) break;
      const descriptor = getOwnPropertyDescriptor(method, key);
      if (descriptor === undefined) continue;
      if (!("value" in descriptor)) {
        plain = false;
        continue;
      }
      const value = descriptor.value;
      if ((typeof value !== "object" && typeof value !== "function") || value === null) continue;
      if (key === "prototype" && isDefaultPrototype(value, method)) defaultPrototype = value;
      else plain = false;
    }
    if (!plain) return void into.push(method);
    if (defaultPrototype !== undefined) freeze(defaultPrototype);
    freeze(method);
  }

  /**
   * Removes the listeners added to the recorded emitters (`process`, the HTTP agents), then puts every
   * recorded object's own properties back. In this order: Node emits `removeListener` for each listener
   * removed, so a `removeListener` handler the call added runs during the removal, and what it changes
   * must be put back after it (red team 6, S3: it re-planted a module property and the agent's `lookup`).
   *
   * Returns undefined when every object is as it was recorded, or what could not be put back: the
   * put-back is `Reflect.defineProperty`/`deleteProperty`, which fail (return false) on a property a call
   * made non-configurable (`Object.defineProperty(path, "join", { value: spy, configurable: false })`), on
   * an object it froze or made non-extensible, and a setter may ignore its value. Before, those failures
   * were ignored and the next call, maybe another execution's, ran with the call's replacement in place
   * (break attempt brk39). The caller must then retire the worker. A property counts as put back when its
   * value or accessors are those recorded: its attributes may change without a call's doing (the sandbox
   * freezes the class of a `PerformanceObserver` a call observes with, call_scope.ts, turning its methods
   * into accessors that give them: {@linkcode tamedFrom}), and a property pinned with the recorded value
   * holds nothing of the call's.
   *
   * @throws {Error} when the call's handlers keep adding listeners as they are removed: the process
   * cannot be made clean, and the worker fails rather than serve another call in it.
   */
  restore(): string | undefined {
    this.#removeAddedListeners();
    const failed: string[] = [];
    for (const { object, keys, saved, prototype } of this.#recorded) {
      // A prototype a call set (a proxy made `process`'s or `http.globalAgent`'s prototype) answered for
      // every inherited or missing member in later calls, and its trap saw their arguments (brk41).
      if (
        prototype !== undefined && getPrototypeOf(object) !== prototype && !setPrototypeOf(object, prototype)
      ) {
        failed.push("its prototype");
      }
      for (const key of ownKeys(object)) {
        if (!keys.has(key) && !deleteProperty(object, key)) failed.push(`${String(key)} (added)`);
      }
      for (const [key, was] of saved) {
        const now = getOwnPropertyDescriptor(object, key);
        if (now === undefined || now.value !== was.value || now.get !== was.get || now.set !== was.set) {
          if (now !== undefined && tamedFrom(now, was)) continue;
          if (!defineProperty(object, key, was)) failed.push(String(key));
        }
      }
    }
    this.#restoreListenerMaps(failed);
    for (const { object, get, set, value } of this.#accessors) {
      if (is(get.call(object), value)) continue;
      set.call(object, value);
      if (!is(get.call(object), value)) failed.push("a value behind an accessor");
    }
    return failed.length === 0
      ? undefined
      : `Node's objects, which could not be put back (${failed.slice(0, 3).join(", ")})`;
  }

  #removeAddedListeners(): void {
    for (let pass = 0; pass < MAX_LISTENER_PASSES; pass++) {
      let removed = 0;
      for (const [emitter, listeners] of this.#emitters) {
        // `removeListener` handlers first, so that fewer of the call's handlers see the other removals.
        const names = this.#eventNames(emitter).sort((a, b) =>
          Number(b === "removeListener") - Number(a === "removeListener")
        );
        for (const name of names) {
          const kept = listeners.get(name);
          for (const listener of this.#rawListeners(emitter, name)) {
            if (kept?.has(listener)) continue;
            apply(this.#methods().removeListener, emitter, [name, listener]);
            removed++;
          }
        }
      }
      if (removed === 0) return;
    }
    throw new Error(`listeners added by the call kept coming back after ${MAX_LISTENER_PASSES} removals`);
  }

  /**
   * Records `value` if it is a function, a plain object or array (a module's object, `fs.promises`,
   * `http.METHODS`), or a class's prototype, with its prototype chain and, for a function, its `prototype`;
   * returns the objects newly recorded. Instances of classes (`http.globalAgent`) are live state, which
   * putting back would corrupt: only `instance` (`process` and its streams) records one. Frozen objects
   * (intrinsics, host classes) cannot change.
   */
  #recordObject(value: unknown, instance = false, prototypeOf = false): object[] {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return [];
    if (value === globalThis) return [];
    if (typeof value === "object" && !instance) {
      const prototype = prototypeOrUndefined(value);
      if (prototype !== null && prototype !== Object.prototype && prototype !== Array.prototype) return [];
    }
    const recorded: object[] = [];
    let object: object | null = value;
    for (let depth = 0; object !== null && depth < 8; depth++) {
      if (this.#seen.has(object)) break;
      let keys: PropertyKey[];
      try {
        if (isFrozen(object)) break;
        keys = ownKeys(object);
      } catch {
        // A proxy whose traps need a permission: `process.env` (its writes are undone by
        // process_state.ts), `tls.rootCertificates` (`sys`: before, importing node:tls failed to load).
        this.#seen.add(object);
        return recorded;
      }
      this.#seen.add(object);
      const saved: Array<[PropertyKey, PropertyDescriptor]> = [];
      for (const key of keys) saved.push([key, getOwnPropertyDescriptor(object, key)!]);
      // A property neither configurable nor writable cannot have changed. An array's `length` is writable
      // only: it is set back too, after the indices a call added are deleted.
      this.#recorded.push({
        object,
        keys: new Set(keys),
        saved: saved.filter(([, d]) => d.configurable || d.writable),
        prototype: prototypeOrUndefined(object),
      });
      recorded.push(object);
      if (typeof object === "object" && (depth > 0 || prototypeOf)) this.#prototypes.add(object);
      if (typeof object === "function") {
        // A class's prototype is recorded whatever it inherits from (`http.Agent.prototype`: an emitter's).
        const classPrototype = getOwnPropertyDescriptor(object, "prototype")?.value;
        recorded.push(...this.#recordObject(classPrototype, true, true));
      }
      object = prototypeOrUndefined(object) ?? null;
    }
    return recorded;
  }
}

/**
 * Whether `value` is the `prototype` a function gets when it is made: an object holding nothing but its
 * `constructor` (none for a generator function's), inheriting from a frozen intrinsic.
 */
function isDefaultPrototype(value: object, method: object): boolean {
  const prototype = prototypeOrUndefined(value);
  if (prototype === undefined || (prototype !== null && !isFrozen(prototype))) return false;
  const keys = ownKeys(value);
  if (keys.length === 0) return true;
  return keys.length === 1 && keys[0] === "constructor" &&
    getOwnPropertyDescriptor(value, "constructor")?.value === method;
}

/** Whether `get` gives `value` again: a getter that builds an object per read has nothing to set back. */
function sameEachRead(get: () => unknown, object: object, value: unknown): boolean {
  try {
    return get.call(object) === value;
  } catch {
    return false;
  }
}

/** A proxy's `getPrototypeOf` trap may need a permission: such an object is not recorded. */
function prototypeOrUndefined(object: object): object | null | undefined {
  try {
    return getPrototypeOf(object);
  } catch {
    return undefined;
  }
}
