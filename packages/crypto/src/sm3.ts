import { createHmac, hash } from "node:crypto";

/**
 * SM3 (GB/T 32905) of the concatenation of `parts`: 32 bytes. Node's OpenSSL does the work, in
 * one shot (no Hash object: about twice as fast as createHash for the small inputs the chain
 * hashes most, tree nodes and tx bodies).
 */
export function sm3(...parts: Uint8Array[]): Uint8Array {
  const data = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
  return new Uint8Array(hash("sm3", data, "buffer")); // a copy: a pooled Buffer's ArrayBuffer is shared
}

export function hmacSm3(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac("sm3", key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export const SM3_LENGTH = 32;

/** The one pattern of an SM3 hash (tx, block, code) in the chain's canonical form: 0x + 64 lowercase hex. */
export const HASH_RE = /^0x[0-9a-f]{64}$/;
