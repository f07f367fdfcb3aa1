import { bytesEqual } from "@custos/utils";
import { Packr, RESET_BUFFER_MODE } from "msgpackr";
import { DecodeError } from "./errors.js";

/**
 * The one msgpack configuration of the chain. Structures are arrays of integers, bigints,
 * byte strings, strings, booleans and null. 64-bit quantities (heights, times, money) are always
 * bigint, which msgpackr writes as int64 (0xd3) below 2^63; every other integer is a JS number
 * below 2^32, written in its shortest form. Maps decode as `Map` (never plain objects, so no
 * key can reach a prototype) and 64-bit integers decode as bigint, so decode -> encode
 * reproduces the bytes exactly for everything this codec writes.
 */
const OPTIONS = { useRecords: false, mapsAsObjects: false, int64AsType: "bigint" } as const;
const packr = new Packr(OPTIONS);

/**
 * Inputs of up to 64 bytes may live on V8's heap (state values are mostly a few bytes), and
 * asking one for `.buffer` moves it into a malloc'd store. They are copied into one scratch
 * buffer instead and decoded by an unpacker that copies byte strings out (a decoded value never
 * points into the scratch; `npm run bench -- hot-path` measures it).
 */
const SMALL = 64;
const smallUnpackr = new Packr({ ...OPTIONS, copyBuffers: true });
const smallScratch = Buffer.allocUnsafeSlow(SMALL);

/**
 * Encodes into fresh bytes. msgpackr packs into a buffer of its own; RESET_BUFFER_MODE has it
 * pack every value from the same place in that buffer (the bytes are copied out at once), where
 * by default each value follows the last and a new buffer is allocated every few kilobytes.
 */
export function encode(value: unknown): Uint8Array {
  return new Uint8Array(packr.pack(value, RESET_BUFFER_MODE));
}

/**
 * Decodes exactly one msgpack value filling all of `bytes`. Anything else (truncated data,
 * trailing bytes, over `maxBytes`) is a DecodeError naming `structure`.
 */
export function decode(bytes: Uint8Array, structure: string, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new DecodeError("DECODE_WRONG_TYPE", structure, "", "expected bytes");
  }
  if (bytes.byteLength > maxBytes) {
    throw new DecodeError("DECODE_TOO_LARGE", structure, "", `${bytes.byteLength} bytes, limit ${maxBytes}`);
  }
  if (bytes.byteLength === 0) throw new DecodeError("DECODE_MALFORMED", structure, "", "empty input");
  try {
    if (bytes.byteLength <= SMALL) {
      smallScratch.set(bytes);
      return smallUnpackr.unpack(smallScratch.subarray(0, bytes.byteLength));
    }
    return packr.unpack(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new DecodeError("DECODE_MALFORMED", structure, "", `not valid msgpack (${(err as Error).message})`);
  }
}

/**
 * `assertCanonical` against a value not yet encoded: its encoding is compared where the encoder
 * wrote it, without the copy `encode` makes (decoding a transaction checks two encodings).
 */
export function assertEncodesAs(original: Uint8Array, value: unknown, structure: string): void {
  // a view of the encoder's buffer, overwritten by the next pack: compared at once, never kept
  assertCanonical(original, packr.pack(value, RESET_BUFFER_MODE), structure);
}

/**
 * Refuses input whose canonical re-encoding differs: one value, one byte string. Hashes and
 * signatures cover exact bytes, and this keeps two encodings of one value from ever coexisting.
 */
export function assertCanonical(original: Uint8Array, reencoded: Uint8Array, structure: string): void {
  if (!bytesEqual(original, reencoded)) {
    throw new DecodeError("DECODE_NON_CANONICAL", structure, "", "not in canonical encoding");
  }
}
