import { createRequire } from "node:module";
import { loadNativeSm2 } from "@custos/sm2-native";
import { bigIntToBytes, fromHex, toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import {
  compressPublicKey,
  JsSm2Backend,
  SM2_A,
  SM2_B,
  SM2_GX,
  SM2_GY,
  SM2_N,
  SM2_P,
  SM2_STANDARD_EXAMPLE,
  type Sm2Backend,
  selectSm2,
  sm2Digest,
  sm2Za,
  uncompressPublicKey,
} from "../../src/index.js";
import { allBackends, nativeBackend, seededBytes } from "../helpers.js";

// sm-crypto, the original library, as an independent reference (CommonJS).
const smCrypto = createRequire(import.meta.url)("sm-crypto").sm2 as {
  doSignature(msg: number[], priv: string, o: { hash: boolean; der: boolean }): string;
  doVerifySignature(msg: number[], sig: string, pub: string, o: { hash: boolean; der: boolean }): boolean;
};

const ex = SM2_STANDARD_EXAMPLE;
const enc = (s: string) => new TextEncoder().encode(s);
const backends = allBackends();

describe("SM2 standard example (GB/T 32918.5, recommended curve)", () => {
  it("derives Z_A and e of the standard", () => {
    const xy = fromHex(ex.publicKey).subarray(1);
    expect(toHex(sm2Za(xy))).toBe(ex.za);
    expect(toHex(sm2Digest(xy, enc(ex.message)))).toBe(ex.e);
  });

  for (const b of backends) {
    it(`${b.name}: reproduces the public key and accepts the standard signature`, () => {
      expect(toHex(b.publicKey(fromHex(ex.privateKey)))).toBe(ex.publicKey);
      const pub = fromHex(ex.publicKey);
      expect(b.verify(pub, enc(ex.message), fromHex(ex.signature))).toBe(true);
      expect(b.verify(compressPublicKey(pub), enc(ex.message), fromHex(ex.signature))).toBe(true);
      expect(b.verify(pub, enc("message digesT"), fromHex(ex.signature))).toBe(false);
    });
  }

  it("reports which backend is active and why", () => {
    const sel = selectSm2();
    const forced = process.env.CUSTOS_SM2_BACKEND;
    if (forced === "js" || forced === "native") expect(sel.backend.name).toBe(forced);
    if (process.env.CI && forced !== "js") expect(sel.backend.name).toBe("native");
    expect(sel.reason.length).toBeGreaterThan(0);
  });
});

type Signer = { name: string; sign(priv: Uint8Array, msg: Uint8Array): Uint8Array };
type Verifier = { name: string; verify(pub65: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean };

const smCryptoSigner: Signer = {
  name: "sm-crypto",
  sign: (priv, msg) =>
    fromHex(smCrypto.doSignature(Array.from(msg), toHex(priv), { hash: true, der: false })),
};
const smCryptoVerifier: Verifier = {
  name: "sm-crypto",
  verify: (pub, msg, sig) =>
    smCrypto.doVerifySignature(Array.from(msg), toHex(sig), toHex(pub), { hash: true, der: false }),
};

/**
 * These compare named backends explicitly, whatever the active one is: npm test's second run
 * (CUSTOS_SM2_BACKEND=js, `npm run test:js-backend`) would repeat them byte for byte, and they are
 * a minute of the suite (sm-crypto does ~50 operations a second). They run in the first run.
 */
const repeatRun = process.env.CUSTOS_SM2_BACKEND === "js";

describe.skipIf(repeatRun)("cross-verification of 1,000 random signatures", () => {
  it("every signature made by one of native / JS / sm-crypto verifies with all three", () => {
    const signers: Signer[] = [...backends, smCryptoSigner];
    const verifiers: Verifier[] = [...backends, smCryptoVerifier];
    const js = new JsSm2Backend();
    const rnd = seededBytes(2026);
    const counts = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      let priv = rnd(32);
      while ((priv[0] as number) === 0xff) priv = rnd(32); // keep d < n - 1
      const msg = rnd(i % 97);
      const signer = signers[i % signers.length] as Signer;
      const sig = signer.sign(priv, msg);
      const pub = js.publicKey(priv);
      for (const v of verifiers) {
        const ok = v.verify(pub, msg, sig);
        if (!ok) throw new Error(`case ${i}: ${v.name} rejected a signature by ${signer.name}`);
        const key = `${signer.name}->${v.name}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      // and a one-bit change is rejected by every verifier
      if (i % 10 === 0) {
        const bad = sig.slice();
        bad[i % 64] = (bad[i % 64] as number) ^ 0x80;
        for (const v of verifiers)
          expect(v.verify(pub, msg, bad), `${v.name} accepted a corrupted sig`).toBe(false);
      }
    }
    for (const s of signers)
      for (const v of verifiers) expect(counts.get(`${s.name}->${v.name}`)).toBeGreaterThan(300);
  }, 240_000); // sm-crypto does ~50 ops/s
});

describe.skipIf(repeatRun)("native fast path against OpenSSL's own multiplication", () => {
  const native = nativeBackend();
  it.skipIf(native === null)("agrees on 3,000 valid, corrupted and random signatures", () => {
    const n = native as NonNullable<typeof native>;
    const rnd = seededBytes(99);
    let valid = 0;
    for (let i = 0; i < 3000; i++) {
      const priv = rnd(32);
      priv[0] = (priv[0] as number) & 0x7f;
      const msg = rnd(i % 50);
      const pub = i % 2 ? n.publicKey(priv) : compressPublicKey(n.publicKey(priv));
      let sig = n.sign(priv, msg);
      if (i % 3 === 1) sig[(i * 7) % 64] = (sig[(i * 7) % 64] as number) ^ (1 << (i % 8));
      if (i % 3 === 2) sig = rnd(64);
      const fast = n.verify(pub, msg, sig);
      expect(fast).toBe(n.verifyReference(pub, msg, sig));
      if (fast) valid++;
    }
    expect(valid).toBe(1000);
  });

  it.skipIf(native === null)("agrees when keys come back: their extended tables, and after eviction", () => {
    // A key's first verification uses the table of its odd multiples; from its second on, the
    // tables of 2^32, 2^64, ..., 2^224 times it as well (32 doublings instead of 256). A thread
    // keeps 512 keys, four per set: of 700 keys cycled twice, those in the sets that overflow are
    // evicted and come back as new.
    const n = native as NonNullable<typeof native>;
    const rnd = seededBytes(7);
    const keyOf = (compressed: boolean) => {
      const priv = rnd(32);
      priv[0] = (priv[0] as number) & 0x7f;
      const pub = n.publicKey(priv);
      return { priv, pub: compressed ? compressPublicKey(pub) : pub };
    };
    let valid = 0;
    const check = (k: { priv: Uint8Array; pub: Uint8Array }, i: number) => {
      const msg = rnd(1 + (i % 40));
      let sig = n.sign(k.priv, msg);
      if (i % 3 === 1) sig[(i * 5) % 64] = (sig[(i * 5) % 64] as number) ^ (1 << (i % 8));
      if (i % 3 === 2) sig = rnd(64);
      const fast = n.verify(k.pub, msg, sig);
      expect(fast).toBe(n.verifyReference(k.pub, msg, sig));
      if (fast) valid++;
    };
    const few = Array.from({ length: 8 }, (_, i) => keyOf(i % 2 === 0));
    for (let i = 0; i < 1200; i++) check(few[i % few.length] as (typeof few)[number], i);
    expect(valid).toBe(400);
    valid = 0;
    const many = Array.from({ length: 700 }, (_, i) => keyOf(i % 2 === 1));
    for (let i = 0; i < 1400; i++) check(many[i % many.length] as (typeof many)[number], i);
    expect(valid).toBe(467);
  });

  it.skipIf(native === null)("agrees at the edges of the scalar range", () => {
    const n = native as NonNullable<typeof native>;
    const priv = fromHex("0000000000000000000000000000000000000000000000000000000000000001");
    const pub = n.publicKey(priv);
    const msg = enc("edge");
    for (const r of [1n, 2n, SM2_N - 1n, SM2_N - 2n, 1n << 255n]) {
      for (const s of [1n, 2n, SM2_N - 1n, SM2_N - 3n, (1n << 128n) + 7n]) {
        const sig = new Uint8Array([...bigIntToBytes(r, 32), ...bigIntToBytes(s, 32)]);
        expect(n.verify(pub, msg, sig)).toBe(n.verifyReference(pub, msg, sig));
      }
    }
  });
});

describe.skipIf(nativeBackend() === null)("native verify when x1 lies between n and p", () => {
  // R = (e + x1) mod n = r holds for x1 = (r - e) mod n and for that plus n when it is still below
  // p. No signature over a message reaches the second (about 2^-128 of them do, and choosing one
  // needs a discrete logarithm), so e is chosen here: pick a point P with x in [n, p), r = e + x
  // - n, s = 1, and the key Q that makes s*G + t*Q = P, i.e. Q = t^-1 * (P - G).
  const p = SM2_P;
  const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;
  const pow = (b: bigint, e: bigint, m: bigint) => {
    let r = 1n;
    let x = mod(b, m);
    for (let k = e; k > 0n; k >>= 1n) {
      if (k & 1n) r = (r * x) % m;
      x = (x * x) % m;
    }
    return r;
  };
  const inv = (a: bigint, m: bigint) => pow(a, m - 2n, m); // p and n are prime
  type Pt = readonly [bigint, bigint] | null;
  const add = (P: Pt, Q: Pt): Pt => {
    if (P === null) return Q;
    if (Q === null) return P;
    let l: bigint;
    if (P[0] === Q[0]) {
      if (mod(P[1] + Q[1], p) === 0n) return null;
      l = mod((3n * P[0] * P[0] + SM2_A) * inv(2n * P[1], p), p);
    } else l = mod((Q[1] - P[1]) * inv(Q[0] - P[0], p), p);
    const x = mod(l * l - P[0] - Q[0], p);
    return [x, mod(l * (P[0] - x) - P[1], p)];
  };
  const mul = (k: bigint, P: Pt): Pt => {
    let acc: Pt = null;
    for (let i = 255n; i >= 0n; i--) {
      acc = add(acc, acc);
      if ((k >> i) & 1n) acc = add(acc, P);
    }
    return acc;
  };
  const b32 = (v: bigint) => bigIntToBytes(v, 32);

  it("accepts r = e + x1 - n through the fast path and OpenSSL's, and rejects a neighbouring e", () => {
    const addon = loadNativeSm2();
    // the first x from n up that is on the curve (p = 3 mod 4: a square root is a power)
    let P: Pt = null;
    for (let x = SM2_N; P === null; x++) {
      const rhs = mod(x * x * x + SM2_A * x + SM2_B, p);
      const y = pow(rhs, (p + 1n) / 4n, p);
      if ((y * y) % p === rhs) P = [x, y];
    }
    const [x1] = P as [bigint, bigint];
    expect(x1 >= SM2_N && x1 < p).toBe(true);
    const e = 0x1234_5678_9abc_def0n;
    const r = mod(e + x1, SM2_N);
    const s = 1n;
    const t = mod(r + s, SM2_N);
    const Q = mul(inv(t, SM2_N), add(P, [SM2_GX, mod(-SM2_GY, p)])) as [bigint, bigint];
    const full = new Uint8Array([4, ...b32(Q[0]), ...b32(Q[1])]);
    const sig = new Uint8Array([...b32(r), ...b32(s)]);
    // the construction is right: OpenSSL's own multiplication accepts it
    expect(addon.verifyDigest(full, b32(e), sig, true)).toBe(true);
    for (const pub of [full, compressPublicKey(full)]) {
      expect(addon.verifyDigest(pub, b32(e), sig, false)).toBe(true);
      for (const other of [e + 1n, e - 1n]) {
        expect(addon.verifyDigest(pub, b32(other), sig, false)).toBe(false);
        expect(addon.verifyDigest(pub, b32(other), sig, true)).toBe(false);
      }
    }
  });
});

/** Every kind of malformed input a verifier must reject without throwing. */
function malformedCases(): { name: string; pub: unknown; msg: unknown; sig: unknown }[] {
  const pub = fromHex(ex.publicKey);
  const msg = enc(ex.message);
  const sig = fromHex(ex.signature);
  const rs = (r: bigint, s: bigint) => new Uint8Array([...bigIntToBytes(r, 32), ...bigIntToBytes(s, 32)]);
  const r = BigInt(`0x${ex.signature.slice(0, 64)}`);
  const offCurve = pub.slice();
  offCurve[64] = (offCurve[64] as number) ^ 1;
  // an x with no square root mod p: x = 3 has none for SM2's b (checked by the test below)
  const noRoot = new Uint8Array(33);
  noRoot[0] = 2;
  noRoot[32] = 3;
  const xTooBig = new Uint8Array([2, ...bigIntToBytes(SM2_P, 32)]);
  const hybrid = pub.slice();
  hybrid[0] = 6;
  const cases = [
    { name: "empty signature", pub, msg, sig: new Uint8Array() },
    { name: "63-byte signature", pub, msg, sig: sig.subarray(0, 63) },
    { name: "65-byte signature", pub, msg, sig: new Uint8Array([...sig, 0]) },
    { name: "DER signature", pub, msg, sig: new Uint8Array(72) },
    { name: "r = 0", pub, msg, sig: rs(0n, 5n) },
    { name: "s = 0", pub, msg, sig: rs(r, 0n) },
    { name: "r = n", pub, msg, sig: rs(SM2_N, 5n) },
    { name: "s = n", pub, msg, sig: rs(r, SM2_N) },
    { name: "r, s = 2^256 - 1", pub, msg, sig: rs((1n << 256n) - 1n, (1n << 256n) - 1n) },
    { name: "r + s = n", pub, msg, sig: rs(r, SM2_N - r) },
    { name: "all-zero signature", pub, msg, sig: new Uint8Array(64) },
    { name: "empty key", pub: new Uint8Array(), msg, sig },
    { name: "point at infinity (00)", pub: new Uint8Array([0]), msg, sig },
    { name: "32-byte key", pub: pub.subarray(1, 33), msg, sig },
    { name: "64-byte key (no prefix)", pub: pub.subarray(1), msg, sig },
    { name: "66-byte key", pub: new Uint8Array([...pub, 0]), msg, sig },
    { name: "uncompressed prefix on 33 bytes", pub: new Uint8Array([4, ...pub.subarray(1, 33)]), msg, sig },
    { name: "compressed prefix on 65 bytes", pub: new Uint8Array([2, ...pub.subarray(1)]), msg, sig },
    { name: "hybrid prefix 06", pub: hybrid, msg, sig },
    { name: "prefix 05", pub: new Uint8Array([5, ...pub.subarray(1, 33)]), msg, sig },
    { name: "off-curve uncompressed key", pub: offCurve, msg, sig },
    { name: "compressed x without a square root", pub: noRoot, msg, sig },
    { name: "compressed x = p", pub: xTooBig, msg, sig },
    { name: "all-zero 65-byte key", pub: new Uint8Array(65), msg, sig },
    { name: "key as hex string", pub: ex.publicKey, msg, sig },
    { name: "signature as hex string", pub, msg, sig: ex.signature },
    { name: "message as string", pub, msg: ex.message, sig },
    { name: "null everything", pub: null, msg: null, sig: null },
    { name: "number arrays", pub: Array.from(pub), msg: Array.from(msg), sig: Array.from(sig) },
  ];
  return cases;
}

describe("malformed input never verifies and never throws", () => {
  it("the no-square-root fixture really has no root", () => {
    // x = 3: x^3 + ax + b must be a non-residue, else the fixture tests nothing.
    const rhs =
      (27n + 3n * (SM2_P - 3n) + 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n) % SM2_P;
    let acc = 1n;
    let b = rhs;
    let e = (SM2_P - 1n) / 2n;
    while (e > 0n) {
      if (e & 1n) acc = (acc * b) % SM2_P;
      b = (b * b) % SM2_P;
      e >>= 1n;
    }
    expect(acc).toBe(SM2_P - 1n); // Euler's criterion: -1 means no square root
  });

  const cases = malformedCases();
  const verifiers: (Sm2Backend | { name: string; verify: typeof nativeRef })[] = [...backends];
  const native = nativeBackend();
  const nativeRef = (p: Uint8Array, m: Uint8Array, s: Uint8Array) =>
    (native as NonNullable<typeof native>).verifyReference(p, m, s);
  if (native) verifiers.push({ name: "native-reference", verify: nativeRef });
  for (const v of verifiers) {
    it(`${v.name}: rejects ${cases.length} malformed inputs`, () => {
      for (const c of cases) {
        let result: unknown;
        expect(() => {
          result = v.verify(c.pub as Uint8Array, c.msg as Uint8Array, c.sig as Uint8Array);
        }, c.name).not.toThrow();
        expect(result, c.name).toBe(false);
      }
    });
  }

  it("a valid case among them does verify (the fixtures are not all broken)", () => {
    for (const b of backends) {
      expect(b.verify(fromHex(ex.publicKey), enc(ex.message), fromHex(ex.signature))).toBe(true);
    }
  });
});

describe("private keys", () => {
  for (const b of backends) {
    it(`${b.name}: refuses keys outside [1, n-2]`, () => {
      for (const d of [0n, SM2_N - 1n, SM2_N, (1n << 256n) - 1n]) {
        const priv = bigIntToBytes(d, 32);
        expect(() => b.sign(priv, enc("m")), d.toString(16)).toThrow(
          expect.objectContaining({ code: "SM2_INVALID_PRIVATE_KEY" }),
        );
        expect(() => b.publicKey(priv)).toThrow(expect.objectContaining({ code: "SM2_INVALID_PRIVATE_KEY" }));
      }
      expect(() => b.sign(new Uint8Array(31).fill(1), enc("m"))).toThrow(
        expect.objectContaining({ code: "SM2_INVALID_PRIVATE_KEY" }),
      );
      const edge = bigIntToBytes(SM2_N - 2n, 32);
      const sig = b.sign(edge, enc("m"));
      expect(b.verify(b.publicKey(edge), enc("m"), sig)).toBe(true);
    });
  }

  it("compressed and uncompressed keys convert both ways", () => {
    const pub = fromHex(ex.publicKey);
    const c = compressPublicKey(pub);
    expect(toHex(c)).toBe(`03${ex.publicKey.slice(2, 66)}`); // y of the example is odd
    expect(toHex(uncompressPublicKey(c))).toBe(ex.publicKey);
    expect(() => compressPublicKey(new Uint8Array(65))).toThrow(
      expect.objectContaining({ code: "INVALID_PUBLIC_KEY" }),
    );
  });
});
