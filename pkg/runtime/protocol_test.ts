import assert from "node:assert/strict";
import {
  CALL_KEY_BYTES,
  CallCipher,
  encodeFrame,
  FrameReader,
  ProtocolError,
  SMALL_FRAME_BYTES,
} from "./protocol.ts";

const token = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
const text = (s: string) => new TextEncoder().encode(s);

function collect(tokenBytes: Uint8Array, maxPayload = 1024) {
  const frames: [number, number, string][] = [];
  const stray: string[] = [];
  const reader = new FrameReader(tokenBytes, maxPayload, {
    frame: (type, id, payload) => frames.push([type, id, new TextDecoder().decode(payload)]),
    stray: (bytes) => stray.push(new TextDecoder().decode(bytes)),
  });
  return { reader, frames, stray };
}

Deno.test("FrameReader", async (t) => {
  await t.step("decodes frames delivered one byte at a time", () => {
    const { reader, frames, stray } = collect(token);
    const bytes = new Uint8Array([
      ...encodeFrame(token, 3, 7, text("héllo")),
      ...encodeFrame(token, 11, 7, text("")),
    ]);
    for (const b of bytes) reader.push(new Uint8Array([b]));
    assert.deepEqual(frames, [[3, 7, "héllo"], [11, 7, ""]]);
    assert.deepEqual(stray, []);
  });

  await t.step("passes bytes outside frames on as stray output and resynchronises on the token", () => {
    const { reader, frames, stray } = collect(token);
    // The stray text contains the token's first byte, and a partial token right before a real one.
    const noise = new Uint8Array([...text("raw\u0001out"), 1, 2, 3]);
    reader.push(new Uint8Array([...noise, ...encodeFrame(token, 3, 1, text("ok")), ...text("tail")]));
    assert.deepEqual(frames, [[3, 1, "ok"]]);
    assert.equal(stray.join(""), "raw\u0001out\u0001\u0002\u0003tail");
  });

  await t.step("keeps a token cut at a chunk boundary until the rest arrives", () => {
    const { reader, frames, stray } = collect(token);
    const frame = encodeFrame(token, 5, 2, text("x"));
    reader.push(frame.subarray(0, 10));
    assert.deepEqual(stray, []);
    reader.push(frame.subarray(10));
    assert.deepEqual(frames, [[5, 2, "x"]]);
  });

  await t.step("without a token, reads back-to-back frames", () => {
    const { reader, frames } = collect(new Uint8Array(0));
    const none = new Uint8Array(0);
    reader.push(
      new Uint8Array([...encodeFrame(none, 1, 1, text("a")), ...encodeFrame(none, 1, 2, text("bb"))]),
    );
    assert.deepEqual(frames, [[1, 1, "a"], [1, 2, "bb"]]);
  });

  await t.step("refuses a frame over the payload limit", () => {
    const { reader } = collect(token, 4);
    assert.throws(() => reader.push(encodeFrame(token, 3, 1, text("12345"))), ProtocolError);
  });

  await t.step("handles payloads larger than its initial buffer", () => {
    const { reader, frames } = collect(token, 1 << 20);
    const big = "z".repeat(300_000);
    const frame = encodeFrame(token, 3, 9, text(big));
    reader.push(frame.subarray(0, 100_000));
    reader.push(frame.subarray(100_000));
    assert.equal(frames[0][2].length, big.length);
  });
});

Deno.test("CallCipher: frames open in order, and nothing opens after a frame missed or with another id", async (t) => {
  // Small frames are sealed with ChaCha20-Poly1305 at once, large ones with AES-GCM: both keep the rule.
  for (const size of [10, SMALL_FRAME_BYTES, SMALL_FRAME_BYTES + 1, 100_000]) {
    await t.step(`payloads of ${size} bytes`, async () => {
      const payload = (name: string) => text(name.padEnd(size, "."));
      const key = crypto.getRandomValues(new Uint8Array(CALL_KEY_BYTES));
      const sealing = new CallCipher(key, "encrypt");
      const first = await sealing.seal(1, payload("first call"));
      const second = await sealing.seal(2, payload("second call"));
      const third = await sealing.seal(3, payload("third call"));
      assert.ok(!new TextDecoder("latin1").decode(first).includes("first call"));
      const opening = new CallCipher(key, "decrypt");
      // A synchronous throw (small frames) and a rejection (large ones) alike.
      const open = (cipher: CallCipher, id: number, sealed: Uint8Array) =>
        Promise.resolve().then(() => cipher.open(id, sealed));
      assert.deepEqual(await open(opening, 1, first), payload("first call"));
      // The second frame was taken by someone else: the third cannot be opened as the second.
      await assert.rejects(open(opening, 3, third));
      const fresh = new CallCipher(key, "decrypt");
      await open(fresh, 1, first);
      await assert.rejects(open(fresh, 9, second), "a frame opens only under its own call id");
      const other = new CallCipher(crypto.getRandomValues(new Uint8Array(CALL_KEY_BYTES)), "decrypt");
      await assert.rejects(open(other, 1, first), "a frame opens only under its process's key");
    });
  }
});
