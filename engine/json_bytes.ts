/** JSON payloads travel as bytes inside Protobuf messages (`*_json` fields); empty bytes mean null. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function jsonBytes(value: unknown): Uint8Array {
  return value === undefined ? new Uint8Array() : encoder.encode(JSON.stringify(value));
}

export function parseJsonBytes(bytes: Uint8Array | undefined): unknown {
  if (!bytes || bytes.byteLength === 0) return null;
  return JSON.parse(decoder.decode(bytes));
}
