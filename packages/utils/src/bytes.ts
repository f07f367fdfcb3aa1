import { CustosError } from "./errors.js";

/**
 * Buffer's own string codecs, called on any Uint8Array. They read a small array where it lies:
 * V8 keeps typed arrays of up to 64 bytes (hashes, addresses, state keys) on its heap, and asking
 * one for `.buffer`, as `Buffer.from(a.buffer, ...)` does, moves it into a malloc'd backing store
 * that the garbage collector must later sweep (`npm run bench -- hot-path` shows both ways).
 */
type Slice = (this: Uint8Array, start: number, end: number) => string;
const slices = Buffer.prototype as unknown as Partial<Record<"hexSlice" | "latin1Slice", Slice>>;
/** Where they are missing (the explorer's Buffer stand-in in a browser), through a Buffer view. */
const viaBuffer = (encoding: "hex" | "latin1"): Slice =>
  function (start, end) {
    return Buffer.from(this.buffer, this.byteOffset + start, end - start).toString(encoding);
  };
const hexSlice = slices.hexSlice ?? viaBuffer("hex");
const latin1Slice = slices.latin1Slice ?? viaBuffer("latin1");

/** Lowercase hex without prefix. */
export function toHex(bytes: Uint8Array): string {
  return hexSlice.call(bytes, 0, bytes.byteLength);
}

/** Each byte as the character of that code (a compact string key for a Map). */
export function toLatin1(bytes: Uint8Array): string {
  return latin1Slice.call(bytes, 0, bytes.byteLength);
}

/** Each char code's hex digit value, or -1. */
const HEX_DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_DIGIT["0123456789abcdef".charCodeAt(i)] = i;
  HEX_DIGIT["0123456789ABCDEF".charCodeAt(i)] = i;
}

/** Parses hex with or without `0x`; throws `INVALID_HEX` on odd length or non-hex characters. */
export function fromHex(hex: string): Uint8Array {
  const bad = () =>
    new CustosError("INVALID_HEX", "not a hex string of whole bytes", {
      sample: typeof hex === "string" ? hex.slice(0, 16) : typeof hex,
    });
  if (typeof hex !== "string") throw bad();
  const at = hex.charCodeAt(0) === 0x30 && hex.charCodeAt(1) === 0x78 ? 2 : 0; // "0x"
  if ((hex.length - at) % 2 !== 0) throw bad();
  // its own memory (not a slice of a shared pool), parsed in one pass, the same in a browser
  const out = new Uint8Array((hex.length - at) / 2);
  for (let i = 0, j = at; i < out.length; i++, j += 2) {
    const hi = HEX_DIGIT[hex.charCodeAt(j)] ?? -1;
    const lo = HEX_DIGIT[hex.charCodeAt(j + 1)] ?? -1;
    if (hi < 0 || lo < 0) throw bad();
    out[i] = (hi << 4) | lo;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.compare(a, b) === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Big-endian unsigned bigint of `bytes`. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.byteLength === 0 ? 0n : BigInt(`0x${toHex(bytes)}`);
}

/** Big-endian, left-padded to `length` bytes; throws if `value` does not fit. */
export function bigIntToBytes(value: bigint, length: number): Uint8Array {
  if (value < 0n)
    throw new CustosError("INVALID_ARGUMENT", "negative value cannot be encoded as unsigned bytes");
  const hex = value.toString(16);
  if (hex.length > length * 2) {
    throw new CustosError("INVALID_ARGUMENT", `value does not fit in ${length} bytes`);
  }
  return fromHex(hex.padStart(length * 2, "0"));
}

/** Byte order of two byte strings (-1, 0, 1), as LevelDB sorts keys. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}
