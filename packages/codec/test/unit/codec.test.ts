import { sm3 } from "@custos/crypto";
import { toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import {
  decode,
  encode,
  fieldAt,
  merkleLeafHash,
  merkleProof,
  merkleProofs,
  merkleRoot,
  readArray,
  readBytes,
  readSafeU64,
  readString,
  readU64,
  readUint,
  readVersion,
  verifyMerkleProof,
} from "../../src/index.js";

const c = fieldAt("Thing", "f");

describe("msgpack", () => {
  it("writes 64-bit quantities as int64 and reads them back as bigint", () => {
    const bytes = encode([1, 5n, 2n ** 63n, new Uint8Array([1, 2]), "x", null, true]);
    expect(toHex(bytes)).toBe(
      "97" + "01" + "d30000000000000005" + "cf8000000000000000" + "c4020102" + "a178" + "c0" + "c3",
    );
    expect(decode(bytes, "T", 100)).toEqual([1, 5n, 2n ** 63n, Buffer.from([1, 2]), "x", null, true]);
  });

  it("refuses empty, truncated, oversized and trailing input as DecodeErrors naming the structure", () => {
    expect(() => decode(new Uint8Array(), "T", 10)).toThrow(
      expect.objectContaining({ code: "DECODE_MALFORMED" }),
    );
    expect(() => decode(new Uint8Array([0x92, 0x01]), "T", 10)).toThrow(
      expect.objectContaining({ code: "DECODE_MALFORMED", meta: { structure: "T", field: "" } }),
    );
    expect(() => decode(new Uint8Array([1, 2]), "T", 10)).toThrow(
      expect.objectContaining({ code: "DECODE_MALFORMED" }),
    );
    expect(() => decode(new Uint8Array(11), "T", 10)).toThrow(
      expect.objectContaining({ code: "DECODE_TOO_LARGE" }),
    );
    // bin32 claiming 4 GiB in a 10-byte buffer
    expect(() => decode(new Uint8Array([0xc6, 0xff, 0xff, 0xff, 0xff, 1]), "T", 10)).toThrow(
      expect.objectContaining({ code: "DECODE_MALFORMED" }),
    );
  });

  it("decodes small inputs (64 bytes or less, copied first) and large ones alike; byte strings never alias", () => {
    // [bin8 of n bytes, int64, "s"] encodes to n + 14 bytes: 50 is the largest copied first
    for (const size of [1, 40, 50, 51, 200]) {
      const value = [new Uint8Array(size).fill(7), 9n, "s"];
      const bytes = encode(value);
      expect(bytes.byteLength).toBe(size + 14);
      const got = decode(bytes, "T", 1000) as [Uint8Array, bigint, string];
      expect(got).toEqual([Buffer.from(value[0] as Uint8Array), 9n, "s"]);
      // decoding something else must not change what an earlier decode returned
      decode(encode([new Uint8Array(size).fill(1), 1n, "t"]), "T", 1000);
      expect(got[0].every((b) => b === 7)).toBe(true);
      // trailing bytes are refused on both paths
      expect(() => decode(new Uint8Array([...bytes, 0xc0]), "T", 1000)).toThrow(
        expect.objectContaining({ code: "DECODE_MALFORMED" }),
      );
    }
  });

  it("decodes maps as Map, never as plain objects", () => {
    const v = decode(new Uint8Array([0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01]), "T", 100);
    expect(v).toBeInstanceOf(Map);
    expect(({} as Record<string, unknown>).constructor).toBe(Object);
  });
});

describe("field readers", () => {
  it("accept what they promise", () => {
    expect(readUint(7, c)).toBe(7);
    expect(readU64(7n, c)).toBe(7n);
    expect(readSafeU64(7n, c)).toBe(7);
    expect(readString("ab", c, { max: 2 })).toBe("ab");
    expect(readBytes(new Uint8Array(2), c, 2).byteLength).toBe(2);
    expect(readArray([1], c, 1)).toEqual([1]);
    expect(readVersion(1, c, [1])).toBe(1);
  });

  it("name the field and the reason on every refusal", () => {
    const cases: [() => unknown, string][] = [
      [() => readUint(1.5, c), "DECODE_WRONG_TYPE"],
      [() => readUint(5n, c), "DECODE_WRONG_TYPE"],
      [() => readUint(-1, c), "DECODE_OUT_OF_RANGE"],
      [() => readUint(300, c, 255), "DECODE_OUT_OF_RANGE"],
      [() => readU64(5, c), "DECODE_WRONG_TYPE"],
      [() => readU64(-1n, c), "DECODE_OUT_OF_RANGE"],
      [() => readSafeU64(2n ** 53n, c), "DECODE_OUT_OF_RANGE"],
      [() => readString(5, c, { max: 3 }), "DECODE_WRONG_TYPE"],
      [() => readString("abcd", c, { max: 3 }), "DECODE_WRONG_LENGTH"],
      [() => readString("ab", c, { max: 3, pattern: /^a$/ }), "DECODE_OUT_OF_RANGE"],
      [() => readBytes("ab", c), "DECODE_WRONG_TYPE"],
      [() => readBytes(new Uint8Array(3), c, 2), "DECODE_WRONG_LENGTH"],
      [() => readBytes(new Uint8Array(3), c, { max: 2 }), "DECODE_WRONG_LENGTH"],
      [() => readArray(new Map(), c), "DECODE_WRONG_TYPE"],
      [() => readArray([1, 2], c, 3), "DECODE_WRONG_LENGTH"],
      [() => readVersion(2, c, [1]), "DECODE_UNKNOWN_VERSION"],
    ];
    for (const [fn, code] of cases) {
      let err: { code?: string; message?: string; meta?: unknown } | undefined;
      try {
        fn();
      } catch (e) {
        err = e as typeof err;
      }
      expect(err?.code, fn.toString()).toBe(code);
      expect(err?.message, fn.toString()).toMatch(/^Thing\.f: /);
      expect(err?.meta).toEqual({ structure: "Thing", field: "f" });
    }
  });
});

/** RFC 6962 MTH, written recursively and independently of the level-by-level implementation. */
function referenceRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sm3();
  if (leaves.length === 1) return merkleLeafHash(leaves[0] as Uint8Array);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sm3(new Uint8Array([1]), referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

describe("SM3 Merkle tree", () => {
  const leaves = (n: number) => Array.from({ length: n }, (_, i) => new TextEncoder().encode(`leaf-${i}`));

  it("matches the recursive RFC 6962 definition for every size up to 70", () => {
    for (let n = 0; n <= 70; n++)
      expect(toHex(merkleRoot(leaves(n))), `n=${n}`).toBe(toHex(referenceRoot(leaves(n))));
  });

  it("separates leaves from nodes and does not duplicate the last leaf", () => {
    const [a, b] = leaves(2) as [Uint8Array, Uint8Array];
    // a one-leaf tree of the concatenated children is not the two-leaf tree
    expect(toHex(merkleRoot([a, b]))).not.toBe(
      toHex(merkleRoot([new Uint8Array([...merkleLeafHash(a), ...merkleLeafHash(b)])])),
    );
    const three = leaves(3);
    expect(toHex(merkleRoot(three))).not.toBe(toHex(merkleRoot([...three, three[2] as Uint8Array])));
  });

  it("proves inclusion of every leaf of trees up to 40, and nothing else", () => {
    for (let n = 1; n <= 40; n++) {
      const ls = leaves(n);
      const root = merkleRoot(ls);
      for (let i = 0; i < n; i++) {
        const proof = merkleProof(ls, i);
        expect(verifyMerkleProof(ls[i] as Uint8Array, proof, root), `n=${n} i=${i}`).toBe(true);
        expect(verifyMerkleProof(new TextEncoder().encode("intruder"), proof, root)).toBe(false);
        if (n > 1) {
          expect(verifyMerkleProof(ls[i] as Uint8Array, { ...proof, leafIndex: (i + 1) % n }, root)).toBe(
            false,
          );
          expect(verifyMerkleProof(ls[i] as Uint8Array, { ...proof, path: proof.path.slice(1) }, root)).toBe(
            false,
          );
        }
        // (the tree size is known to the verifier, as in RFC 9162; an index outside it never verifies)
        expect(verifyMerkleProof(ls[i] as Uint8Array, { ...proof, leafIndex: n }, root)).toBe(false);
      }
    }
    expect(() => merkleProof(leaves(3), 3)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });

  it("proves several leaves of one tree at once (an audit export's entries of one block)", () => {
    const ls = leaves(37);
    const root = merkleRoot(ls);
    const idx = [0, 5, 36, 17];
    const proofs = merkleProofs(ls, idx);
    idx.forEach((i, k) => {
      expect(proofs[k]).toEqual(merkleProof(ls, i));
      expect(verifyMerkleProof(ls[i] as Uint8Array, proofs[k] as never, root)).toBe(true);
    });
    expect(() => merkleProofs(ls, [1, 37])).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });
});
