import { CustosError } from "@custos/utils";
import { hmacSm3 } from "./sm3.js";

/**
 * HKDF (RFC 5869) over HMAC-SM3: the chain's key-derivation function wherever a key is derived
 * from a secret (the p2p transport's key schedule, the libp2p key derived from the node key).
 * Written out here rather than through `crypto.hkdfSync` so that the construction is visible;
 * the tests check it against `hkdfSync("sm3", ...)`.
 */
export const HKDF_SM3_HASH_LEN = 32;

/** PRK = HMAC-SM3(salt, IKM); an empty salt stands for 32 zero bytes (RFC 5869 §2.2). */
export function hkdfSm3Extract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  const key = salt.byteLength === 0 ? new Uint8Array(HKDF_SM3_HASH_LEN) : salt;
  return hmacSm3(key, ikm);
}

/** OKM = T(1) || T(2) || ... cut to `length`, T(i) = HMAC-SM3(PRK, T(i-1) || info || i). */
export function hkdfSm3Expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 255 * HKDF_SM3_HASH_LEN)
    throw new CustosError(
      "INVALID_ARGUMENT",
      `HKDF-SM3 output length must be in [1, ${255 * HKDF_SM3_HASH_LEN}]`,
    );
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, at = 0; at < length; i++) {
    const next = hmacSm3(prk, t, info, Uint8Array.of(i));
    t.fill(0);
    t = next;
    out.set(t.subarray(0, Math.min(t.byteLength, length - at)), at);
    at += t.byteLength;
  }
  t.fill(0);
  return out;
}

export function hkdfSm3(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const prk = hkdfSm3Extract(salt, ikm);
  try {
    return hkdfSm3Expand(prk, info, length);
  } finally {
    prk.fill(0);
  }
}
