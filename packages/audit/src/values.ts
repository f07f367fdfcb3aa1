import { toHex } from "@custos/utils";

/**
 * A decoded event payload as plain values: msgpack maps (how VM contracts' objects travel) become
 * objects without a prototype, so no key from the chain can reach one; bytes become 0x hex;
 * bigints stay bigints (money is never a float).
 */
export function plain(v: unknown): unknown {
  if (v instanceof Map) {
    const o: Record<string, unknown> = Object.create(null);
    for (const [k, x] of v) o[String(k)] = plain(x);
    return o;
  }
  if (v instanceof Uint8Array) return `0x${toHex(v)}`;
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

/** An integer amount of fen from a payload (a bigint, or a safe integer), else undefined. */
export function fenOf(v: unknown): bigint | undefined {
  if (typeof v === "bigint") return v >= 0n ? v : undefined;
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return undefined;
}

export function intOf(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === "bigint" && v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  return undefined;
}

export function strOf(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export function field(o: unknown, k: string): unknown {
  return o !== null && typeof o === "object" && !Array.isArray(o)
    ? (o as Record<string, unknown>)[k]
    : undefined;
}

/** A value as JSON: bigint as a decimal string, recursively. */
export function toJson(v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), toJson(x)]));
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = toJson(x);
    return o;
  }
  return v;
}

/** Basis points of a / b, rounded down; null when b is 0. */
export function bps(a: bigint, b: bigint): number | null {
  return b === 0n ? null : Number((a * 10_000n) / b);
}
