// msgpack of the few argument lists the explorer's queries take (strings and small integers),
// written by hand so that the first page needs no msgpack library.

function str(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  if (b.length < 32) return [0xa0 | b.length, ...b];
  if (b.length < 256) return [0xd9, b.length, ...b];
  return [0xda, b.length >> 8, b.length & 0xff, ...b];
}

function uint(n: number): number[] {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`not a small integer: ${n}`);
  if (n < 128) return [n];
  if (n < 256) return [0xcc, n];
  if (n < 65536) return [0xcd, n >> 8, n & 0xff];
  return [0xce, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

/** A map of string fields (fewer than 16): a query's filter. */
export interface ArgMap {
  map: Record<string, string | number>;
}

function one(a: string | number | ArgMap): number[] {
  if (typeof a === "string") return str(a);
  if (typeof a === "number") return uint(a);
  const entries = Object.entries(a.map);
  return [0x80 | entries.length, ...entries.flatMap(([k, v]) => [...str(k), ...one(v)])];
}

/** The 0x hex of msgpack [args...] (fewer than 16 of them). */
export function msgpackArgs(...args: (string | number | ArgMap)[]): string {
  const bytes = [0x90 | args.length, ...args.flatMap(one)];
  return `0x${bytes.map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}
