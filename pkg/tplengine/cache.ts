/**
 * A least-recently-used map bounded both by entry count and by the total length of its keys, so that a
 * project with many long prompts cannot grow it without limit.
 */
export class LruCache<V> {
  readonly #entries = new Map<string, V>();
  #chars = 0;

  constructor(readonly maxEntries: number, readonly maxChars: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(
        `Cannot create cache as 'maxEntries' must be a positive integer: current value is ${maxEntries}`,
      );
    }
    if (!Number.isInteger(maxChars) || maxChars < 1) {
      throw new RangeError(
        `Cannot create cache as 'maxChars' must be a positive integer: current value is ${maxChars}`,
      );
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    const value = this.#entries.get(key);
    if (value === undefined) return undefined;
    // Map keeps insertion order, so re-inserting marks the entry as the most recently used.
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  set(key: string, value: V): void {
    if (key.length > this.maxChars) return;
    if (this.#entries.delete(key)) this.#chars -= key.length;
    this.#entries.set(key, value);
    this.#chars += key.length;
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.maxEntries && this.#chars <= this.maxChars) break;
      this.#entries.delete(oldest);
      this.#chars -= oldest.length;
    }
  }
}
