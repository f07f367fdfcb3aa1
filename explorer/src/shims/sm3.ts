// The browser's SM3 for the chain's packages (the build puts it in place of packages/crypto's
// sm3.ts, which uses Node's OpenSSL): the same function over sm-crypto-v2's pure-JS SM3.
import { sm3 as sm3Hex } from "sm-crypto-v2";

function fromHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** SM3 (GB/T 32905) of the concatenation of `parts`: 32 bytes. */
export function sm3(...parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.byteLength;
  const data = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.byteLength;
  }
  return fromHex(sm3Hex(data));
}

export function hmacSm3(): Uint8Array {
  throw new Error("HMAC-SM3 is not used in the browser");
}

export const SM3_LENGTH = 32;
export const HASH_RE = /^0x[0-9a-f]{64}$/;
