import { CustosError } from "./errors.js";

const HEX_RE = /^(0x)?([0-9a-fA-F]{2})*$/;

/** Lowercase hex without prefix. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Parses hex with or without `0x`; throws `INVALID_HEX` on odd length or non-hex characters. */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== "string" || !HEX_RE.test(hex)) {
    throw new CustosError("INVALID_HEX", "not a hex string of whole bytes", {
      sample: typeof hex === "string" ? hex.slice(0, 16) : typeof hex,
    });
  }
  const at = hex.startsWith("0x") ? 2 : 0;
  const out = new Uint8Array((hex.length - at) / 2); // its own memory, not a slice of Buffer's pool
  Buffer.from(out.buffer).write(at ? hex.slice(2) : hex, "hex");
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
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
