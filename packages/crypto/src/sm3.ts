import { createHash, createHmac } from "node:crypto";

/** SM3 (GB/T 32905) of the concatenation of `parts`: 32 bytes. Node's OpenSSL does the work. */
export function sm3(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sm3");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function hmacSm3(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac("sm3", key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export const SM3_LENGTH = 32;

/** The one pattern of an SM3 hash (tx, block, code) in the chain's canonical form: 0x + 64 lowercase hex. */
export const HASH_RE = /^0x[0-9a-f]{64}$/;
