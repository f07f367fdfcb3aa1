import { createHmac, hash } from "node:crypto";

/**
 * SM3 (GB/T 32905) of the concatenation of `parts`: 32 bytes. Node's OpenSSL does the work, in
 * one shot (no Hash object: about twice as fast as createHash for the small inputs the chain
 * hashes most, tree nodes and tx bodies). The digest comes back as a latin1 string and is copied
 * into an array on V8's heap: a Buffer digest costs a malloc'd backing store per hash, and its
 * sweeping (`npm run bench -- hot-path` shows both ways).
 */
export function sm3(...parts: Uint8Array[]): Uint8Array {
  const d = hash("sm3", joined(parts), "binary"); // latin1
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = d.charCodeAt(i);
  return out;
}

/** Small concatenations (tree nodes, chain links) go through one reused buffer, not a new one each. */
const scratch = Buffer.allocUnsafeSlow(1024);

function joined(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  let n = 0;
  for (const p of parts) n += p.byteLength;
  if (n > scratch.byteLength) return Buffer.concat(parts);
  let at = 0;
  for (const p of parts) {
    scratch.set(p, at);
    at += p.byteLength;
  }
  return scratch.subarray(0, n); // hashed at once, before anything else can use it
}

export function hmacSm3(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac("sm3", key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export const SM3_LENGTH = 32;

/** The one pattern of an SM3 hash (tx, block, code) in the chain's canonical form: 0x + 64 lowercase hex. */
export const HASH_RE = /^0x[0-9a-f]{64}$/;
