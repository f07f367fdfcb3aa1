import { bigIntToBytes, bytesToBigInt, concatBytes } from "@custos/utils";
import { sm3 } from "../sm3.js";

/** sm2p256v1, the curve recommended by GB/T 32918.5. */
export const SM2_P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn;
export const SM2_A = 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn;
export const SM2_B = 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n;
export const SM2_N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
export const SM2_GX = 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n;
export const SM2_GY = 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n;

/** The distinguishing ID fixed by the chain's profile (GM/T 0009 default). */
export const SM2_DEFAULT_ID = new TextEncoder().encode("1234567812345678");

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}

function curveRhs(x: bigint): bigint {
  return (((x * x) % SM2_P) * x + SM2_A * x + SM2_B) % SM2_P;
}

/**
 * Decodes a public key (33-byte compressed or 65-byte uncompressed) to its affine coordinates,
 * 64 bytes x||y. Returns null for anything that is not a point on the curve: wrong length or
 * prefix, coordinates >= p, no square root, or an uncompressed point off the curve.
 */
export function decodePublicKeyXY(pub: Uint8Array): Uint8Array | null {
  if (!(pub instanceof Uint8Array)) return null;
  if (pub.byteLength === 65 && pub[0] === 4) {
    const x = bytesToBigInt(pub.subarray(1, 33));
    const y = bytesToBigInt(pub.subarray(33, 65));
    if (x >= SM2_P || y >= SM2_P || (y * y) % SM2_P !== curveRhs(x)) return null;
    return pub.slice(1);
  }
  if (pub.byteLength === 33 && (pub[0] === 2 || pub[0] === 3)) {
    const x = bytesToBigInt(pub.subarray(1, 33));
    if (x >= SM2_P) return null;
    const rhs = curveRhs(x);
    // p = 3 mod 4, so a square root is rhs^((p+1)/4) when one exists.
    let y = modPow(rhs, (SM2_P + 1n) / 4n, SM2_P);
    if ((y * y) % SM2_P !== rhs) return null;
    if (Number(y & 1n) !== (pub[0] & 1)) y = SM2_P - y;
    return concatBytes(pub.subarray(1, 33), bigIntToBytes(y, 32));
  }
  return null;
}

/** Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA) for the chain's fixed ID. */
const zaPrefix = concatBytes(
  new Uint8Array([(SM2_DEFAULT_ID.byteLength * 8) >> 8, (SM2_DEFAULT_ID.byteLength * 8) & 0xff]),
  SM2_DEFAULT_ID,
  bigIntToBytes(SM2_A, 32),
  bigIntToBytes(SM2_B, 32),
  bigIntToBytes(SM2_GX, 32),
  bigIntToBytes(SM2_GY, 32),
);

export function sm2Za(publicKeyXY: Uint8Array): Uint8Array {
  return sm3(zaPrefix, publicKeyXY);
}

/** e = SM3(Z_A || M): the value an SM2 signature actually signs. */
export function sm2Digest(publicKeyXY: Uint8Array, message: Uint8Array): Uint8Array {
  return sm3(sm2Za(publicKeyXY), message);
}

/** Parses r||s and applies the range checks every verifier must make: r, s in [1, n-1], r + s != n. */
export function parseSignature(sig: Uint8Array): { r: bigint; s: bigint } | null {
  if (!(sig instanceof Uint8Array) || sig.byteLength !== 64) return null;
  const r = bytesToBigInt(sig.subarray(0, 32));
  const s = bytesToBigInt(sig.subarray(32, 64));
  if (r === 0n || r >= SM2_N || s === 0n || s >= SM2_N || (r + s) % SM2_N === 0n) return null;
  return { r, s };
}

/** A private key is 32 bytes in [1, n-2] (SM2 needs 1 + d invertible mod n). */
export function isValidPrivateKey(priv: Uint8Array): boolean {
  if (!(priv instanceof Uint8Array) || priv.byteLength !== 32) return false;
  const d = bytesToBigInt(priv);
  return d >= 1n && d <= SM2_N - 2n;
}
