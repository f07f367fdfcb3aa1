import { sm3 } from "@custos/crypto";
import { toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import { bucketOf, STATE_BUCKET_BITS, StateTree, stateKey, verifyStateProof } from "../../src/index.js";

const enc = (s: string) => new TextEncoder().encode(s);

/** A seeded generator (xorshift32): the same entries every run. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe("state tree (the state root rule)", () => {
  const entries: [Uint8Array, Uint8Array][] = Array.from({ length: 3000 }, (_, i) => [
    stateKey("ecny", `b:0x${i.toString(16).padStart(40, "0")}`),
    enc(`value-${i}`),
  ]);

  it("gives the same root built at once, applied in steps, or predicted with rootAfter", () => {
    const whole = StateTree.from(entries);
    const stepwise = new StateTree();
    const r = rng(7);
    const shuffled = [...entries].sort(() => r() - 0.5);
    for (let i = 0; i < shuffled.length; i += 500) {
      const batch = shuffled.slice(i, i + 500).map(([key, value]) => ({ key, value }));
      const predicted = stepwise.rootAfter(batch);
      expect(toHex(stepwise.apply(batch))).toBe(toHex(predicted));
    }
    expect(toHex(stepwise.root)).toBe(toHex(whole.root));
    expect(stepwise.size).toBe(3000);
    // a delete and a re-insert come back to the same root; rootAfter changes nothing
    const [k, v] = entries[42] as [Uint8Array, Uint8Array];
    const before = toHex(whole.root);
    expect(toHex(whole.rootAfter([{ key: k, value: null }]))).not.toBe(before);
    expect(toHex(whole.root)).toBe(before);
    whole.apply([{ key: k, value: null }]);
    whole.apply([{ key: k, value: v }]);
    expect(toHex(whole.root)).toBe(before);
  });

  it("proves a present key's value and an absent key's absence; anything else fails, saying why", () => {
    const t = StateTree.from(entries);
    const [k, v] = entries[1234] as [Uint8Array, Uint8Array];
    const p = t.prove(k);
    expect(p.siblings).toHaveLength(STATE_BUCKET_BITS);
    verifyStateProof(t.root, k, v, p);
    const absent = stateKey("ecny", "b:nobody");
    verifyStateProof(t.root, absent, null, t.prove(absent));
    const fails = (f: () => void, why: RegExp) => expect(f).toThrow(why);
    fails(() => verifyStateProof(t.root, k, enc("other"), p), /the value differs/);
    fails(() => verifyStateProof(t.root, k, null, p), /the key is present/);
    fails(() => verifyStateProof(t.root, absent, enc("x"), t.prove(absent)), /the key is absent/);
    fails(() => verifyStateProof(sm3(enc("another root")), k, v, p), /the root is/);
    const dropped = { ...p, leaves: p.leaves.filter(([h]) => toHex(h) !== toHex(sm3(k))) };
    fails(() => verifyStateProof(t.root, k, null, dropped), /the root is/); // hiding a key changes the bucket
    const sibling = { ...p, siblings: p.siblings.map((s, i) => (i === 3 ? sm3(s) : s)) };
    fails(() => verifyStateProof(t.root, k, v, sibling), /the root is/);
    fails(() => verifyStateProof(t.root, k, v, { ...p, bucket: (p.bucket + 1) % 4096 }), /another bucket/);
    if (p.leaves.length > 1)
      fails(() => verifyStateProof(t.root, k, v, { ...p, leaves: [...p.leaves].reverse() }), /not sorted/);
  });

  it("puts a key in the bucket its hash names", () => {
    const k = stateKey("members", "m:0xabc");
    expect(t0(bucketOf(sm3(k)))).toBe(true);
    function t0(b: number) {
      return b >= 0 && b < 2 ** STATE_BUCKET_BITS;
    }
    // the first 12 bits of SM3(k), read from its hex: fixed hashes, and the key's own
    const fromHex = (h: Uint8Array) => Number.parseInt(toHex(h).slice(0, 3), 16);
    expect(bucketOf(new Uint8Array(32).fill(0xff))).toBe(4095);
    expect(bucketOf(Uint8Array.of(0xab, 0xcd, ...new Uint8Array(30)))).toBe(0xabc);
    for (const key of [k, stateKey("ecny", "b:0x01"), stateKey("templates", "t:counter@1.0.0")])
      expect(bucketOf(sm3(key))).toBe(fromHex(sm3(key)));
  });
});
