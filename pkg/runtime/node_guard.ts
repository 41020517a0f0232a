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

const { ownKeys, defineProperty, deleteProperty, getPrototypeOf } = Reflect;
const { getOwnPropertyDescriptor, isFrozen } = Object;

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
}

export class NodeStateGuard {
  readonly #recorded: Recorded[] = [];
  readonly #seen = new WeakSet<object>();
  #emitter: Emitter | undefined;
  #listeners = new Map<string | symbol, Set<unknown>>();

  /** Records `process` (with its stdout and stderr) and its listeners as they are now. */
  recordProcess(process: object): void {
    this.#recordObject(process, true);
    for (const key of ["stdout", "stderr"]) {
      // Accessors of Node's: read once here, they build the stream (our stdout/stderr writers are on it).
      const stream = (process as Record<string, unknown>)[key];
      if (typeof stream === "object" && stream !== null) this.#recordObject(stream, true);
    }
    this.#emitter = process as Emitter;
    this.#listeners = new Map(
      this.#emitter.eventNames().map((name) => [name, new Set(this.#emitter!.rawListeners(name))]),
    );
  }

  /**
   * Records a built-in module: its namespace's default export and the values of its exports, the
   * objects those hold one level down (`fs.promises`), and the prototype chains of the classes among them.
   */
  recordModule(namespace: object): void {
    const values: unknown[] = [];
    for (const key of ownKeys(namespace)) values.push(getOwnPropertyDescriptor(namespace, key)?.value);
    const level: object[] = [];
    for (const value of values) if (this.#recordObject(value)) level.push(value as object);
    for (const object of level) {
      for (const key of ownKeys(object)) {
        const descriptor = getOwnPropertyDescriptor(object, key);
        if (descriptor && "value" in descriptor) this.#recordObject(descriptor.value);
      }
    }
  }

  /** Puts every recorded object's own properties back, and removes listeners added to `process`. */
  restore(): void {
    for (const { object, keys, saved } of this.#recorded) {
      for (const key of ownKeys(object)) {
        if (!keys.has(key)) deleteProperty(object, key);
      }
      for (const [key, was] of saved) {
        const now = getOwnPropertyDescriptor(object, key);
        if (now === undefined || now.value !== was.value || now.get !== was.get || now.set !== was.set) {
          defineProperty(object, key, was);
        }
      }
    }
    const emitter = this.#emitter;
    if (emitter === undefined) return;
    for (const name of emitter.eventNames()) {
      const kept = this.#listeners.get(name);
      for (const listener of emitter.rawListeners(name)) {
        if (!kept?.has(listener)) emitter.removeListener(name, listener);
      }
    }
  }

  /**
   * Records `value` if it is a function or a plain object (a module's object, `fs.promises`) not recorded
   * yet, with its prototype chain and, for a function, its `prototype`; false for anything else. Instances
   * of classes (`http.globalAgent`) are live state, which putting back would corrupt: only `instance`
   * (`process` and its streams) records one. Frozen objects (intrinsics, host classes) cannot change.
   */
  #recordObject(value: unknown, instance = false): boolean {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return false;
    if (value === globalThis) return false;
    if (typeof value === "object" && !instance) {
      const prototype = getPrototypeOf(value);
      if (prototype !== null && prototype !== Object.prototype) return false;
    }
    let object: object | null = value;
    for (let depth = 0; object !== null && depth < 8; depth++) {
      if (this.#seen.has(object) || isFrozen(object)) break;
      this.#seen.add(object);
      let keys: PropertyKey[];
      try {
        keys = ownKeys(object);
      } catch {
        // A proxy whose keys need a permission (`process.env`: its writes are undone by process_state.ts).
        return false;
      }
      const saved: Array<[PropertyKey, PropertyDescriptor]> = [];
      for (const key of keys) saved.push([key, getOwnPropertyDescriptor(object, key)!]);
      // A property neither configurable nor writable cannot have changed.
      this.#recorded.push({
        object,
        keys: new Set(keys),
        saved: saved.filter(([, d]) => d.configurable),
      });
      if (typeof object === "function") {
        this.#recordObject(getOwnPropertyDescriptor(object, "prototype")?.value);
      }
      object = getPrototypeOf(object);
    }
    return true;
  }
}
