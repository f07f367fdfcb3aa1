import { DecodeError } from "./errors.js";

/**
 * Readers for the fields of a decoded structure. Each checks type, length and range and throws
 * a DecodeError naming `structure.field`. They never coerce: a wrong type is an error.
 */
export interface FieldCtx {
  structure: string;
  field: string;
}

const at = (structure: string, field: string): FieldCtx => ({ structure, field });

export { at as fieldAt };

function describe(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (Array.isArray(v)) return `array of ${v.length}`;
  if (v instanceof Map) return "map";
  if (typeof v === "number" && !Number.isInteger(v)) return "float";
  return typeof v;
}

function wrongType(c: FieldCtx, expected: string, v: unknown): DecodeError {
  return new DecodeError(
    "DECODE_WRONG_TYPE",
    c.structure,
    c.field,
    `expected ${expected}, got ${describe(v)}`,
  );
}

export function readArray(
  v: unknown,
  c: FieldCtx,
  length?: number | { min: number; max: number },
): unknown[] {
  if (!Array.isArray(v)) throw wrongType(c, "an array", v);
  if (typeof length === "number" && v.length !== length) {
    throw new DecodeError(
      "DECODE_WRONG_LENGTH",
      c.structure,
      c.field,
      `expected ${length} items, got ${v.length}`,
    );
  }
  if (typeof length === "object" && (v.length < length.min || v.length > length.max)) {
    throw new DecodeError(
      "DECODE_WRONG_LENGTH",
      c.structure,
      c.field,
      `expected ${length.min} to ${length.max} items, got ${v.length}`,
    );
  }
  return v;
}

/** An unsigned integer below 2^32 (a JS number on the wire). */
export function readUint(v: unknown, c: FieldCtx, max = 0xffff_ffff): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw wrongType(c, "an integer", v);
  if (v < 0 || v > max)
    throw new DecodeError("DECODE_OUT_OF_RANGE", c.structure, c.field, `${v} not in [0, ${max}]`);
  return v;
}

/** An unsigned 64-bit integer (bigint on the wire). */
export function readU64(v: unknown, c: FieldCtx, max = (1n << 64n) - 1n): bigint {
  if (typeof v !== "bigint") throw wrongType(c, "a 64-bit integer", v);
  if (v < 0n || v > max)
    throw new DecodeError("DECODE_OUT_OF_RANGE", c.structure, c.field, `${v} not in [0, ${max}]`);
  return v;
}

/** A 64-bit unsigned integer that must also be a safe JS number (heights, times, views). */
export function readSafeU64(v: unknown, c: FieldCtx): number {
  return Number(readU64(v, c, BigInt(Number.MAX_SAFE_INTEGER)));
}

export function readBytes(v: unknown, c: FieldCtx, length?: number | { max: number }): Uint8Array {
  if (!(v instanceof Uint8Array)) throw wrongType(c, "bytes", v);
  if (typeof length === "number" && v.byteLength !== length) {
    throw new DecodeError(
      "DECODE_WRONG_LENGTH",
      c.structure,
      c.field,
      `expected ${length} bytes, got ${v.byteLength}`,
    );
  }
  if (typeof length === "object" && v.byteLength > length.max) {
    throw new DecodeError(
      "DECODE_WRONG_LENGTH",
      c.structure,
      c.field,
      `${v.byteLength} bytes, limit ${length.max}`,
    );
  }
  return v;
}

export function readString(v: unknown, c: FieldCtx, opts: { max: number; pattern?: RegExp }): string {
  if (typeof v !== "string") throw wrongType(c, "a string", v);
  if (v.length > opts.max) {
    throw new DecodeError(
      "DECODE_WRONG_LENGTH",
      c.structure,
      c.field,
      `${v.length} characters, limit ${opts.max}`,
    );
  }
  if (opts.pattern && !opts.pattern.test(v)) {
    throw new DecodeError("DECODE_OUT_OF_RANGE", c.structure, c.field, `does not match ${opts.pattern}`);
  }
  return v;
}

export function readBool(v: unknown, c: FieldCtx): boolean {
  if (typeof v !== "boolean") throw wrongType(c, "a boolean", v);
  return v;
}

export function readNullable<T>(v: unknown, read: (v: unknown) => T): T | null {
  return v === null ? null : read(v);
}

/** Checks the version field (always the first item) against the versions this code knows. */
export function readVersion(v: unknown, c: FieldCtx, known: readonly number[]): number {
  const n = readUint(v, c, 255);
  if (!known.includes(n)) {
    throw new DecodeError("DECODE_UNKNOWN_VERSION", c.structure, c.field, `unknown version ${n}`);
  }
  return n;
}
