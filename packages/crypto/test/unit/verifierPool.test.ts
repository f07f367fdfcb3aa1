import { describe, expect, it } from "vitest";
import { generateKeyPair, type Sm2Backend, VerifierPool, type VerifyItem } from "../../src/index.js";
import { allBackends } from "../helpers.js";

function makeItems(backend: Sm2Backend, count: number): { items: VerifyItem[]; expected: boolean[] } {
  const keys = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
  const items: VerifyItem[] = [];
  const expected: boolean[] = [];
  for (let i = 0; i < count; i++) {
    const k = keys[i % keys.length] as (typeof keys)[number];
    const message = new TextEncoder().encode(`tx ${i}`);
    const signature = backend.sign(k.privateKey, message);
    switch (i % 5) {
      case 1: // wrong message
        items.push({ publicKey: k.publicKey, message: new TextEncoder().encode("other"), signature });
        expected.push(false);
        break;
      case 2: // malformed key and signature lengths
        items.push({ publicKey: k.publicKey.subarray(1), message, signature: signature.subarray(1) });
        expected.push(false);
        break;
      case 3: // wrong key
        items.push({ publicKey: (keys[(i + 1) % 3] as (typeof keys)[number]).publicKey, message, signature });
        expected.push(false);
        break;
      default:
        items.push({ publicKey: k.publicKey, message, signature });
        expected.push(true);
    }
  }
  return { items, expected };
}

describe("verifier pool", () => {
  for (const backend of allBackends()) {
    it(`${backend.name}: batch results come back in input order across threads`, async () => {
      const pool = new VerifierPool({ backend, threads: 2, maxChunk: 16 });
      try {
        const { items, expected } = makeItems(backend, 101);
        expect(await pool.verifyBatch(items)).toEqual(expected);
        expect(await pool.verifyBatch([])).toEqual([]);
      } finally {
        await pool.close();
      }
    });

    it(`${backend.name}: single verify calls in one tick are batched and each gets its answer`, async () => {
      const pool = new VerifierPool({ backend, threads: 2 });
      try {
        const { items, expected } = makeItems(backend, 40);
        const results = await Promise.all(
          items.map((it) => pool.verify(it.publicKey, it.message, it.signature)),
        );
        expect(results).toEqual(expected);
      } finally {
        await pool.close();
      }
    });
  }

  const native = allBackends().find((b) => b.name === "native");
  // without the addon the JS pool has no inline path
  it.skipIf(!native?.verifyPackedAsync)(
    "native: a small gathered batch is checked on the calling thread, a larger one on the pool",
    async () => {
      if (!native) return;
      let pooled = 0;
      const counting: Sm2Backend = Object.assign(Object.create(Object.getPrototypeOf(native)), native, {
        verifyPackedAsync(this: Sm2Backend, b: Parameters<NonNullable<Sm2Backend["verifyPackedAsync"]>>[0]) {
          pooled++;
          return (native.verifyPackedAsync as NonNullable<Sm2Backend["verifyPackedAsync"]>).call(native, b);
        },
      });
      const pool = new VerifierPool({ backend: counting, threads: 2, inlineMax: 4 });
      try {
        const { items, expected } = makeItems(native, 10);
        const one = (i: number) => {
          const it = items[i] as VerifyItem;
          return pool.verify(it.publicKey, it.message, it.signature);
        };
        // one tick, four calls: inline, with every answer right (valid, wrong message, malformed, wrong key)
        expect(await Promise.all([0, 1, 2, 3].map(one))).toEqual(expected.slice(0, 4));
        expect(pooled).toBe(0);
        // one tick, ten calls: the pool (a chunk a thread)
        expect(await Promise.all(items.map((_, i) => one(i)))).toEqual(expected);
        expect(pooled).toBe(2);
      } finally {
        await pool.close();
      }
      const always = new VerifierPool({ backend: counting, threads: 2, inlineMax: 0 });
      try {
        const it = makeItems(native, 1).items[0] as VerifyItem;
        expect(await always.verify(it.publicKey, it.message, it.signature)).toBe(true);
        expect(pooled).toBe(3);
      } finally {
        await always.close();
      }
    },
  );

  it("refuses work after close with VERIFIER_POOL_CLOSED", async () => {
    const pool = new VerifierPool({ threads: 1 });
    await pool.close();
    await expect(pool.verifyBatch([])).rejects.toMatchObject({ code: "VERIFIER_POOL_CLOSED" });
    await expect(pool.verify(new Uint8Array(), new Uint8Array(), new Uint8Array())).rejects.toMatchObject({
      code: "VERIFIER_POOL_CLOSED",
    });
  });
});
