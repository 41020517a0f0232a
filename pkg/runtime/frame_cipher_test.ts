import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { ChaCha20Poly1305, FrameAuthError } from "./frame_cipher.ts";

const hex = (s: string) => new Uint8Array(s.replace(/[\s:]/g, "").match(/../g)!.map((b) => parseInt(b, 16)));
const range = (from: number, n: number) => new Uint8Array(n).map((_, i) => from + i);

Deno.test("frame_cipher: RFC 8439 §2.8.2 AEAD test vector", () => {
  const key = range(0x80, 32);
  const nonce = hex("07000000 4041424344454647");
  const aad = hex("50515253c0c1c2c3c4c5c6c7");
  const plaintext = new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const expected = hex(`
    d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b
    1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
    3ff4def08e4b7a9de576d26586cec64b6116
    1ae10b594f09e26a7e902ecbd0600691`);
  const cipher = new ChaCha20Poly1305(key);
  const sealed = cipher.seal(nonce, aad, plaintext);
  assert.deepEqual(sealed, expected);
  assert.deepEqual(cipher.open(nonce, aad, sealed), plaintext);
});

Deno.test("frame_cipher: an empty message with no associated data (the tag alone) equals node:crypto's", () => {
  // An empty message and no associated data: the tag is Poly1305 of the lengths block under block 0's key.
  const key = new Uint8Array(32);
  const nonce = new Uint8Array(12);
  const ours = new ChaCha20Poly1305(key).seal(nonce, new Uint8Array(0), new Uint8Array(0));
  const node = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  node.final();
  assert.deepEqual(ours, new Uint8Array(node.getAuthTag()));
});

Deno.test("frame_cipher: equals node:crypto's chacha20-poly1305 on random keys, nonces, lengths", () => {
  for (let n = 0; n < 300; n++) {
    const length = n < 150 ? n : Math.floor(Math.random() * 70_000);
    const key = crypto.getRandomValues(new Uint8Array(32));
    const nonce = crypto.getRandomValues(new Uint8Array(12));
    const aad = crypto.getRandomValues(new Uint8Array(n % 37));
    const plaintext = new Uint8Array(length);
    for (let at = 0; at < length; at += 65_536) crypto.getRandomValues(plaintext.subarray(at, at + 65_536));
    const node = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    node.setAAD(aad, { plaintextLength: length });
    const expected = new Uint8Array([...node.update(plaintext), ...node.final(), ...node.getAuthTag()]);
    const cipher = new ChaCha20Poly1305(key);
    const sealed = cipher.seal(nonce, aad, plaintext);
    assert.deepEqual(sealed, expected, `length ${length}`);
    assert.deepEqual(cipher.open(nonce, aad, sealed), plaintext);
  }
});

Deno.test("frame_cipher: a changed byte, nonce, associated data or key does not open", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = new Uint8Array(12).fill(1);
  const aad = new Uint8Array([0, 0, 0, 7]);
  const cipher = new ChaCha20Poly1305(key);
  const sealed = cipher.seal(nonce, aad, new TextEncoder().encode('{"input":{"secret":"x"}}'));
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i] ^= 0x01;
    assert.throws(() => cipher.open(nonce, aad, bad), FrameAuthError, `byte ${i}`);
  }
  assert.throws(() => cipher.open(new Uint8Array(12).fill(2), aad, sealed), FrameAuthError);
  assert.throws(() => cipher.open(nonce, new Uint8Array([0, 0, 0, 8]), sealed), FrameAuthError);
  const other = new ChaCha20Poly1305(crypto.getRandomValues(new Uint8Array(32)));
  assert.throws(() => other.open(nonce, aad, sealed), FrameAuthError);
  assert.throws(() => cipher.open(nonce, aad, sealed.subarray(0, 15)), FrameAuthError);
});
