/**
 * ChaCha20-Poly1305 (RFC 8439), synchronous, in plain TypeScript: the AEAD that seals the call frames between
 * the runtime and a sandbox's host thread (protocol.ts `CallCipher`).
 *
 * Why not Web Crypto's AES-GCM, which sealed them before: each `crypto.subtle` call is an asynchronous op
 * (WebIDL conversions, a promise, a hop to a blocking thread and back) that cost ~40 µs of CPU per frame on
 * each side for a ~200-byte call, 22% of the runtime's CPU samples under W2, while the cipher's work on such a
 * frame is a few blocks. Here sealing a 200-byte frame is a few microseconds, on the caller's thread, with no
 * promise. The guarantee is the same: an AEAD under a random key per process, a nonce used once per key (the
 * frame's number on the channel), and associated data (the call id); opening a frame that is not the next one
 * sealed for that id fails.
 *
 * Poly1305 follows the 13-bit-limb arithmetic of TweetNaCl-js's `nacl-fast.js` (Dmitry Chestnykh and Devi
 * Mandiri, public domain), written as loops. Both halves are checked against RFC 8439's test vectors and
 * against `node:crypto`'s chacha20-poly1305 on random inputs (frame_cipher_test.ts).
 *
 * @module
 */

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

/** Thrown by {@linkcode open} when the tag does not match: wrong key, nonce, data or associated data. */
export class FrameAuthError extends Error {
  override readonly name = "FrameAuthError";
}

// The keystream is read through a byte view of 32-bit words: little-endian hosts only (every Deno target).
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("frame_cipher.ts needs a little-endian host");
}

/** A ChaCha20-Poly1305 key, with the scratch space its operations reuse (one thread, one call at a time). */
export class ChaCha20Poly1305 {
  readonly #key = new Uint32Array(8);
  readonly #state = new Uint32Array(16);
  readonly #block = new Uint32Array(16);
  readonly #blockBytes = new Uint8Array(this.#block.buffer);
  readonly #pad = new Uint8Array(16);
  readonly #r = new Uint16Array(10);
  readonly #h = new Uint16Array(10);
  readonly #s = new Uint16Array(8);

  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new RangeError(`a ChaCha20-Poly1305 key is ${KEY_BYTES} bytes`);
    const view = new DataView(key.buffer, key.byteOffset, KEY_BYTES);
    for (let i = 0; i < 8; i++) this.#key[i] = view.getUint32(i * 4, true);
  }

  /** `plaintext` encrypted, followed by its 16-byte tag. */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + TAG_BYTES);
    this.#xor(nonce, plaintext, out);
    this.#tag(nonce, aad, out.subarray(0, plaintext.length), out, plaintext.length);
    return out;
  }

  /** @throws {FrameAuthError} when `sealed` was not sealed under this key, `nonce` and `aad`. */
  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
    if (sealed.length < TAG_BYTES) throw new FrameAuthError("a sealed frame is shorter than its tag");
    const length = sealed.length - TAG_BYTES;
    const ciphertext = sealed.subarray(0, length);
    const expected = new Uint8Array(TAG_BYTES);
    this.#tag(nonce, aad, ciphertext, expected, 0);
    let diff = 0;
    for (let i = 0; i < TAG_BYTES; i++) diff |= expected[i] ^ sealed[length + i];
    if (diff !== 0) throw new FrameAuthError("the frame's tag does not match");
    const plaintext = new Uint8Array(length);
    this.#xor(nonce, ciphertext, plaintext);
    return plaintext;
  }

  /** Sets up the state for `nonce` with the block counter at `counter`. */
  #init(nonce: Uint8Array, counter: number): void {
    if (nonce.length !== NONCE_BYTES) throw new RangeError(`a ChaCha20 nonce is ${NONCE_BYTES} bytes`);
    const s = this.#state;
    s[0] = 0x61707865;
    s[1] = 0x3320646e;
    s[2] = 0x79622d32;
    s[3] = 0x6b206574;
    s.set(this.#key, 4);
    s[12] = counter;
    const view = new DataView(nonce.buffer, nonce.byteOffset, NONCE_BYTES);
    s[13] = view.getUint32(0, true);
    s[14] = view.getUint32(4, true);
    s[15] = view.getUint32(8, true);
  }

  /** XORs `input` with the keystream from block 1 (block 0 keys the MAC) into `output`. */
  #xor(nonce: Uint8Array, input: Uint8Array, output: Uint8Array): void {
    this.#init(nonce, 1);
    const length = input.length;
    const whole = length - (length % 64);
    let at = 0;
    if (input.byteOffset % 4 === 0 && output.byteOffset % 4 === 0 && whole > 0) {
      // Word by word where both buffers allow it: a 64 KiB frame in a quarter of the byte loop's time.
      const words = new Uint32Array(input.buffer, input.byteOffset, whole / 4);
      const out = new Uint32Array(output.buffer, output.byteOffset, whole / 4);
      const keystream = this.#block;
      for (; at < whole; at += 64) {
        this.#nextBlock();
        const w = at / 4;
        for (let i = 0; i < 16; i++) out[w + i] = words[w + i] ^ keystream[i];
      }
    }
    const keystream = this.#blockBytes;
    for (; at < length; at += 64) {
      this.#nextBlock();
      const end = Math.min(64, length - at);
      for (let i = 0; i < end; i++) output[at + i] = input[at + i] ^ keystream[i];
    }
  }

  /** One ChaCha20 block of the state into `#block`; advances the counter. */
  #nextBlock(): void {
    const s = this.#state;
    let x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3], x4 = s[4], x5 = s[5], x6 = s[6], x7 = s[7];
    let x8 = s[8], x9 = s[9], x10 = s[10], x11 = s[11], x12 = s[12], x13 = s[13], x14 = s[14], x15 = s[15];
    for (let round = 0; round < 10; round++) {
      // Columns.
      x0 = (x0 + x4) | 0, x12 ^= x0, x12 = (x12 << 16) | (x12 >>> 16);
      x8 = (x8 + x12) | 0, x4 ^= x8, x4 = (x4 << 12) | (x4 >>> 20);
      x0 = (x0 + x4) | 0, x12 ^= x0, x12 = (x12 << 8) | (x12 >>> 24);
      x8 = (x8 + x12) | 0, x4 ^= x8, x4 = (x4 << 7) | (x4 >>> 25);
      x1 = (x1 + x5) | 0, x13 ^= x1, x13 = (x13 << 16) | (x13 >>> 16);
      x9 = (x9 + x13) | 0, x5 ^= x9, x5 = (x5 << 12) | (x5 >>> 20);
      x1 = (x1 + x5) | 0, x13 ^= x1, x13 = (x13 << 8) | (x13 >>> 24);
      x9 = (x9 + x13) | 0, x5 ^= x9, x5 = (x5 << 7) | (x5 >>> 25);
      x2 = (x2 + x6) | 0, x14 ^= x2, x14 = (x14 << 16) | (x14 >>> 16);
      x10 = (x10 + x14) | 0, x6 ^= x10, x6 = (x6 << 12) | (x6 >>> 20);
      x2 = (x2 + x6) | 0, x14 ^= x2, x14 = (x14 << 8) | (x14 >>> 24);
      x10 = (x10 + x14) | 0, x6 ^= x10, x6 = (x6 << 7) | (x6 >>> 25);
      x3 = (x3 + x7) | 0, x15 ^= x3, x15 = (x15 << 16) | (x15 >>> 16);
      x11 = (x11 + x15) | 0, x7 ^= x11, x7 = (x7 << 12) | (x7 >>> 20);
      x3 = (x3 + x7) | 0, x15 ^= x3, x15 = (x15 << 8) | (x15 >>> 24);
      x11 = (x11 + x15) | 0, x7 ^= x11, x7 = (x7 << 7) | (x7 >>> 25);
      // Diagonals.
      x0 = (x0 + x5) | 0, x15 ^= x0, x15 = (x15 << 16) | (x15 >>> 16);
      x10 = (x10 + x15) | 0, x5 ^= x10, x5 = (x5 << 12) | (x5 >>> 20);
      x0 = (x0 + x5) | 0, x15 ^= x0, x15 = (x15 << 8) | (x15 >>> 24);
      x10 = (x10 + x15) | 0, x5 ^= x10, x5 = (x5 << 7) | (x5 >>> 25);
      x1 = (x1 + x6) | 0, x12 ^= x1, x12 = (x12 << 16) | (x12 >>> 16);
      x11 = (x11 + x12) | 0, x6 ^= x11, x6 = (x6 << 12) | (x6 >>> 20);
      x1 = (x1 + x6) | 0, x12 ^= x1, x12 = (x12 << 8) | (x12 >>> 24);
      x11 = (x11 + x12) | 0, x6 ^= x11, x6 = (x6 << 7) | (x6 >>> 25);
      x2 = (x2 + x7) | 0, x13 ^= x2, x13 = (x13 << 16) | (x13 >>> 16);
      x8 = (x8 + x13) | 0, x7 ^= x8, x7 = (x7 << 12) | (x7 >>> 20);
      x2 = (x2 + x7) | 0, x13 ^= x2, x13 = (x13 << 8) | (x13 >>> 24);
      x8 = (x8 + x13) | 0, x7 ^= x8, x7 = (x7 << 7) | (x7 >>> 25);
      x3 = (x3 + x4) | 0, x14 ^= x3, x14 = (x14 << 16) | (x14 >>> 16);
      x9 = (x9 + x14) | 0, x4 ^= x9, x4 = (x4 << 12) | (x4 >>> 20);
      x3 = (x3 + x4) | 0, x14 ^= x3, x14 = (x14 << 8) | (x14 >>> 24);
      x9 = (x9 + x14) | 0, x4 ^= x9, x4 = (x4 << 7) | (x4 >>> 25);
    }
    const b = this.#block;
    b[0] = x0 + s[0], b[1] = x1 + s[1], b[2] = x2 + s[2], b[3] = x3 + s[3];
    b[4] = x4 + s[4], b[5] = x5 + s[5], b[6] = x6 + s[6], b[7] = x7 + s[7];
    b[8] = x8 + s[8], b[9] = x9 + s[9], b[10] = x10 + s[10], b[11] = x11 + s[11];
    b[12] = x12 + s[12], b[13] = x13 + s[13], b[14] = x14 + s[14], b[15] = x15 + s[15];
    s[12] = s[12] + 1;
  }

  /**
   * Poly1305 of `aad | pad16 | ciphertext | pad16 | le64(aad length) | le64(ciphertext length)` under the key
   * of the nonce's block 0.
   */
  #tag(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, out: Uint8Array, at: number): void {
    this.#init(nonce, 0);
    this.#nextBlock();
    this.#macKey(this.#blockBytes);
    this.#macPadded(aad);
    this.#macPadded(ciphertext);
    const lengths = this.#pad;
    const view = new DataView(lengths.buffer);
    view.setUint32(0, aad.length, true);
    view.setUint32(4, 0, true);
    view.setUint32(8, ciphertext.length % 0x100000000, true);
    view.setUint32(12, Math.floor(ciphertext.length / 0x100000000), true);
    this.#macBlocks(lengths, 0, 16);
    this.#macFinish(out, at);
  }

  /** The message's full blocks, then its tail zero-padded to a block (RFC 8439's pad16 is message bytes). */
  #macPadded(m: Uint8Array): void {
    const full = m.length - (m.length % 16);
    this.#macBlocks(m, 0, full);
    if (full === m.length) return;
    this.#pad.fill(0);
    this.#pad.set(m.subarray(full));
    this.#macBlocks(this.#pad, 0, 16);
  }

  #macKey(key: Uint8Array): void {
    const r = this.#r;
    const t0 = key[0] | (key[1] << 8), t1 = key[2] | (key[3] << 8);
    const t2 = key[4] | (key[5] << 8), t3 = key[6] | (key[7] << 8);
    const t4 = key[8] | (key[9] << 8), t5 = key[10] | (key[11] << 8);
    const t6 = key[12] | (key[13] << 8), t7 = key[14] | (key[15] << 8);
    // The masks clamp r as Poly1305 requires.
    r[0] = t0 & 0x1fff;
    r[1] = ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
    r[2] = ((t1 >>> 10) | (t2 << 6)) & 0x1f03;
    r[3] = ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
    r[4] = ((t3 >>> 4) | (t4 << 12)) & 0x00ff;
    r[5] = (t4 >>> 1) & 0x1ffe;
    r[6] = ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
    r[7] = ((t5 >>> 11) | (t6 << 5)) & 0x1f81;
    r[8] = ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
    r[9] = (t7 >>> 5) & 0x007f;
    for (let i = 0; i < 8; i++) this.#s[i] = key[16 + 2 * i] | (key[17 + 2 * i] << 8);
    this.#h.fill(0);
  }

  /** h = (h + block + 2^128) · r mod 2^130 − 5, in ten 13-bit limbs (each sum stays under 2^32). */
  #macBlocks(m: Uint8Array, at: number, end: number): void {
    const h = this.#h, r = this.#r;
    let h0 = h[0],
      h1 = h[1],
      h2 = h[2],
      h3 = h[3],
      h4 = h[4],
      h5 = h[5],
      h6 = h[6],
      h7 = h[7],
      h8 = h[8],
      h9 = h[9];
    const r0 = r[0],
      r1 = r[1],
      r2 = r[2],
      r3 = r[3],
      r4 = r[4],
      r5 = r[5],
      r6 = r[6],
      r7 = r[7],
      r8 = r[8],
      r9 = r[9];
    for (; at < end; at += 16) {
      const t0 = m[at] | (m[at + 1] << 8), t1 = m[at + 2] | (m[at + 3] << 8);
      const t2 = m[at + 4] | (m[at + 5] << 8), t3 = m[at + 6] | (m[at + 7] << 8);
      const t4 = m[at + 8] | (m[at + 9] << 8), t5 = m[at + 10] | (m[at + 11] << 8);
      const t6 = m[at + 12] | (m[at + 13] << 8), t7 = m[at + 14] | (m[at + 15] << 8);
      h0 += t0 & 0x1fff;
      h1 += ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
      h2 += ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
      h3 += ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
      h4 += ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
      h5 += (t4 >>> 1) & 0x1fff;
      h6 += ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
      h7 += ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
      h8 += ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
      h9 += (t7 >>> 5) | (1 << 11);
      let c = 0;
      let d0 = c + h0 * r0 + h1 * (5 * r9) + h2 * (5 * r8) + h3 * (5 * r7) + h4 * (5 * r6);
      c = d0 >>> 13;
      d0 = (d0 & 0x1fff) + h5 * (5 * r5) + h6 * (5 * r4) + h7 * (5 * r3) + h8 * (5 * r2) + h9 * (5 * r1);
      c += d0 >>> 13;
      d0 &= 0x1fff;
      let d1 = c + h0 * r1 + h1 * r0 + h2 * (5 * r9) + h3 * (5 * r8) + h4 * (5 * r7);
      c = d1 >>> 13;
      d1 = (d1 & 0x1fff) + h5 * (5 * r6) + h6 * (5 * r5) + h7 * (5 * r4) + h8 * (5 * r3) + h9 * (5 * r2);
      c += d1 >>> 13;
      d1 &= 0x1fff;
      let d2 = c + h0 * r2 + h1 * r1 + h2 * r0 + h3 * (5 * r9) + h4 * (5 * r8);
      c = d2 >>> 13;
      d2 = (d2 & 0x1fff) + h5 * (5 * r7) + h6 * (5 * r6) + h7 * (5 * r5) + h8 * (5 * r4) + h9 * (5 * r3);
      c += d2 >>> 13;
      d2 &= 0x1fff;
      let d3 = c + h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * (5 * r9);
      c = d3 >>> 13;
      d3 = (d3 & 0x1fff) + h5 * (5 * r8) + h6 * (5 * r7) + h7 * (5 * r6) + h8 * (5 * r5) + h9 * (5 * r4);
      c += d3 >>> 13;
      d3 &= 0x1fff;
      let d4 = c + h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0;
      c = d4 >>> 13;
      d4 = (d4 & 0x1fff) + h5 * (5 * r9) + h6 * (5 * r8) + h7 * (5 * r7) + h8 * (5 * r6) + h9 * (5 * r5);
      c += d4 >>> 13;
      d4 &= 0x1fff;
      let d5 = c + h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1;
      c = d5 >>> 13;
      d5 = (d5 & 0x1fff) + h5 * r0 + h6 * (5 * r9) + h7 * (5 * r8) + h8 * (5 * r7) + h9 * (5 * r6);
      c += d5 >>> 13;
      d5 &= 0x1fff;
      let d6 = c + h0 * r6 + h1 * r5 + h2 * r4 + h3 * r3 + h4 * r2;
      c = d6 >>> 13;
      d6 = (d6 & 0x1fff) + h5 * r1 + h6 * r0 + h7 * (5 * r9) + h8 * (5 * r8) + h9 * (5 * r7);
      c += d6 >>> 13;
      d6 &= 0x1fff;
      let d7 = c + h0 * r7 + h1 * r6 + h2 * r5 + h3 * r4 + h4 * r3;
      c = d7 >>> 13;
      d7 = (d7 & 0x1fff) + h5 * r2 + h6 * r1 + h7 * r0 + h8 * (5 * r9) + h9 * (5 * r8);
      c += d7 >>> 13;
      d7 &= 0x1fff;
      let d8 = c + h0 * r8 + h1 * r7 + h2 * r6 + h3 * r5 + h4 * r4;
      c = d8 >>> 13;
      d8 = (d8 & 0x1fff) + h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * (5 * r9);
      c += d8 >>> 13;
      d8 &= 0x1fff;
      let d9 = c + h0 * r9 + h1 * r8 + h2 * r7 + h3 * r6 + h4 * r5;
      c = d9 >>> 13;
      d9 = (d9 & 0x1fff) + h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0;
      c += d9 >>> 13;
      d9 &= 0x1fff;
      c = ((c << 2) + c) | 0;
      c = (c + d0) | 0;
      d0 = c & 0x1fff;
      d1 += c >>> 13;
      h0 = d0, h1 = d1, h2 = d2, h3 = d3, h4 = d4, h5 = d5, h6 = d6, h7 = d7, h8 = d8, h9 = d9;
    }
    h[0] = h0,
      h[1] = h1,
      h[2] = h2,
      h[3] = h3,
      h[4] = h4,
      h[5] = h5,
      h[6] = h6,
      h[7] = h7,
      h[8] = h8,
      h[9] = h9;
  }

  #macFinish(out: Uint8Array, at: number): void {
    const h = this.#h;
    const g = new Uint16Array(10);
    let c = h[1] >>> 13;
    h[1] &= 0x1fff;
    for (let i = 2; i < 10; i++) {
      h[i] += c;
      c = h[i] >>> 13;
      h[i] &= 0x1fff;
    }
    h[0] += c * 5;
    c = h[0] >>> 13;
    h[0] &= 0x1fff;
    h[1] += c;
    c = h[1] >>> 13;
    h[1] &= 0x1fff;
    h[2] += c;
    // g = h + 5 - 2^130: taken when h ≥ 2^130 − 5, in constant time.
    g[0] = h[0] + 5;
    c = g[0] >>> 13;
    g[0] &= 0x1fff;
    for (let i = 1; i < 10; i++) {
      g[i] = h[i] + c;
      c = g[i] >>> 13;
      g[i] &= 0x1fff;
    }
    g[9] -= 1 << 13;
    let mask = (c ^ 1) - 1;
    for (let i = 0; i < 10; i++) g[i] &= mask;
    mask = ~mask;
    for (let i = 0; i < 10; i++) h[i] = (h[i] & mask) | g[i];
    const w = [
      (h[0] | (h[1] << 13)) & 0xffff,
      ((h[1] >>> 3) | (h[2] << 10)) & 0xffff,
      ((h[2] >>> 6) | (h[3] << 7)) & 0xffff,
      ((h[3] >>> 9) | (h[4] << 4)) & 0xffff,
      ((h[4] >>> 12) | (h[5] << 1) | (h[6] << 14)) & 0xffff,
      ((h[6] >>> 2) | (h[7] << 11)) & 0xffff,
      ((h[7] >>> 5) | (h[8] << 8)) & 0xffff,
      ((h[8] >>> 8) | (h[9] << 5)) & 0xffff,
    ];
    // tag = (h + s) mod 2^128.
    let f = 0;
    for (let i = 0; i < 8; i++) {
      f = (((w[i] + this.#s[i]) | 0) + (f >>> 16)) | 0;
      out[at + 2 * i] = f & 0xff;
      out[at + 2 * i + 1] = (f >>> 8) & 0xff;
    }
  }
}
