import { keyPairFromPrivateKey, SM2_N, type Sm2KeyPair, sm2Digest, sm2Sign, sm3 } from "@custos/crypto";
import { bigIntToBytes, bytesToBigInt, concatBytes, toHex } from "@custos/utils";
import { sm2 } from "sm-crypto-v2";
import type { StaticIdentity } from "../src/index.js";

const ascii = (s: string) => new TextEncoder().encode(s);

/** A fixed SM2 private key named by `label` (SM3 of it, reduced into [1, n-2]). */
export function fixedPrivateKey(label: string): Uint8Array {
  const d = (bytesToBigInt(sm3(ascii(`test key ${label}`))) % (SM2_N - 2n)) + 1n;
  return bigIntToBytes(d, 32);
}

export function fixedKeyPair(label: string): Sm2KeyPair {
  return keyPairFromPrivateKey(fixedPrivateKey(label));
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [((a % m) + m) % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/**
 * An SM2 signature (GB/T 32918.2 §6.1) with k derived from the key and the message, so that test
 * vectors are the same on every run: k = SM3("k" || d || M || i) mod n for the first i that
 * gives a valid signature. k·G comes from sm-crypto-v2 (noble-curves), not from OpenSSL.
 */
export function deterministicSign(privateKey: Uint8Array, message: Uint8Array): Uint8Array {
  const uncompressed = sm2.getPublicKeyFromPrivateKey(toHex(privateKey));
  const e = bytesToBigInt(sm2Digest(fromHexLocal(uncompressed).subarray(1), message));
  const d = bytesToBigInt(privateKey);
  for (let i = 0; ; i++) {
    const k = bytesToBigInt(sm3(ascii("k"), privateKey, message, new Uint8Array([i]))) % SM2_N;
    if (k === 0n) continue;
    const kG = fromHexLocal(sm2.getPublicKeyFromPrivateKey(k.toString(16).padStart(64, "0")));
    const x1 = bytesToBigInt(kG.subarray(1, 33));
    const r = (e + x1) % SM2_N;
    if (r === 0n || r + k === SM2_N) continue;
    const s = (modInverse(1n + d, SM2_N) * (((k - r * d) % SM2_N) + SM2_N)) % SM2_N;
    if (s === 0n) continue;
    return concatBytes(bigIntToBytes(r, 32), bigIntToBytes(s, 32));
  }
}

function fromHexLocal(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

/** A node identity over a fixed key: deterministic signatures for vectors, the real signer otherwise. */
export function identityOf(pair: Sm2KeyPair, deterministic = false): StaticIdentity {
  return {
    publicKey: pair.publicKey,
    sign: (m) => (deterministic ? deterministicSign(pair.privateKey, m) : sm2Sign(pair.privateKey, m)),
  };
}

/** A seeded generator (SplitMix32-style): reproducible fuzzing; the seed is printed on failure. */
export function prng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  return {
    next,
    int: (n: number) => next() % n,
    bytes: (n: number) => Uint8Array.from({ length: n }, () => next() & 0xff),
  };
}

/** libp2p 3 calls Promise.withResolvers, which Node 20 lacks (the node has the same polyfill). */
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: <T>() => {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
