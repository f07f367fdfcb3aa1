import { toHex } from "@custos/utils";

/**
 * Values cross the VM boundary as JSON in which a bigint is written {"$n":"<decimal>"}. Money
 * is bigint fen on both sides; no float ever stands for an amount.
 */
export function encodeValue(value: unknown): string {
  return JSON.stringify(toPlain(value, 0) ?? null);
}

export function decodeValue(json: string): unknown {
  return JSON.parse(json, (_k, v) => (isBigIntTag(v) ? BigInt(v.$n) : v));
}

/** How deep values from a contract may nest (outputs and events): msgpack encodes them recursively. */
export const MAX_VALUE_DEPTH = 32;

/**
 * A value from a contract (JSON text the prelude made), checked without recursion: undefined when
 * it nests deeper than MAX_VALUE_DEPTH, so that no host stack depends on what a contract returns.
 */
export function decodeContractValue(json: string): { value: unknown } | undefined {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max > MAX_VALUE_DEPTH ? undefined : { value: decodeValue(json) };
}

function isBigIntTag(v: unknown): v is { $n: string } {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.$n === "string" && /^-?[0-9]{1,80}$/.test(o.$n) && Object.keys(o).length === 1;
}

/** Host values (decoded msgpack) to plain JSON-able values: Map -> object, bytes -> 0x hex. */
function toPlain(v: unknown, depth: number): unknown {
  if (depth > MAX_VALUE_DEPTH) throw new TypeError(`value nested more than ${MAX_VALUE_DEPTH} levels`);
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "bigint":
      return { $n: v.toString() };
    case "number":
      if (!Number.isFinite(v)) throw new TypeError("numbers must be finite");
      return v;
    case "string":
    case "boolean":
      return v;
  }
  if (v instanceof Uint8Array) return `0x${toHex(v)}`;
  if (Array.isArray(v)) return v.map((x) => toPlain(x, depth + 1));
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) {
      if (typeof k !== "string") throw new TypeError("map keys must be strings");
      o[k] = toPlain(x, depth + 1);
    }
    return o;
  }
  if (typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) o[k] = toPlain(x, depth + 1);
    return o;
  }
  throw new TypeError(`cannot pass a ${typeof v} to a contract`);
}
