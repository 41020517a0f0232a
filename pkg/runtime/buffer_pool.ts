/**
 * Node's `Buffer` hands out small buffers as views of one shared pool (8 KiB): `Buffer.from(string)`,
 * `allocUnsafe`, `concat`, and Node's own string writes (a socket's, a file's) take their bytes from it, and
 * each such view's `.buffer` is the whole pool, bytes of earlier buffers included. The pool outlived the
 * call: a call's `new Uint8Array(Buffer.from("z").buffer)` read what the previous call of the warm process,
 * maybe another execution's, had encoded there (the `user:password` of a Basic header), with no state of
 * its own kept between the calls (break attempt brk42; `test/runtime/buffer_pool_test.ts`). Honest code
 * leaks it too: handing `buf.buffer` to `fetch`, a `Blob` or `crypto.subtle` is a common slip.
 *
 * So after each call whose code drew from the pool, the rest of the pool is taken: the next call's first
 * small buffer starts a new pool, and the old one stays reachable only through buffers made before, which
 * only the tool's own module state could keep ("Which calls share a worker" in docs/runtime-sandbox.md).
 * Node's pool and its offset are private to its module; what the reset sees of them is through one-byte
 * probes: a probe right after the previous reset's probe (or at the start of a pool it made) means the call
 * drew nothing.
 *
 * @module
 */

/** What the reset uses of Node's `Buffer` class (the global, which `node:buffer` exports too). */
export interface PooledBuffers {
  readonly poolSize: number;
  allocUnsafe(size: number): Uint8Array;
}

/** Node rounds the pool's offset up to this after each buffer it hands out. */
const POOL_ALIGNMENT = 8;
/**
 * Takes of the rest of a pool: each take is under half the pool (what Node serves from it), so three do for
 * any pool; more means the class does not pool as assumed, and the reset reports it.
 */
const MAX_TAKES = 4;

/**
 * Returns the reset: it takes the rest of the current pool when the call drew from it, and says what it
 * could not put back (`undefined` when it could), as the other resets of a call's end do.
 */
export function bufferPoolReset(buffers: PooledBuffers): () => string | undefined {
  // Taken now, before the tool loads: the class is frozen with the realm, but the reset need not rely on it.
  const allocUnsafe = buffers.allocUnsafe.bind(buffers);
  const half = buffers.poolSize >>> 1;
  let last: Uint8Array | undefined;
  return () => {
    let probe = allocUnsafe(1);
    const untouched = probe.byteOffset === 0 ||
      (last !== undefined && probe.buffer === last.buffer && probe.byteOffset === next(last));
    last = probe;
    if (untouched) return undefined;
    const pool = probe.buffer;
    for (let take = 0; take < MAX_TAKES; take++) {
      const rest = pool.byteLength - next(probe);
      if (rest <= 0) return undefined;
      probe = allocUnsafe(Math.min(rest, half - 1));
      // Taking more than was left made a new pool: it holds only this take.
      if (probe.buffer !== pool) return undefined;
    }
    return "Node's Buffer pool";
  };
}

/** Where Node hands out the next buffer after `view`, in the same pool if it fits. */
function next(view: Uint8Array): number {
  const end = view.byteOffset + view.length;
  return Math.ceil(end / POOL_ALIGNMENT) * POOL_ALIGNMENT;
}
