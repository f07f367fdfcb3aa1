import { encode } from "@custos/codec";
import { generateKeyPair, sm2Sign, sm3 } from "@custos/crypto";
import { fromHex, toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import {
  type CommitCertificate,
  commitVoteBytes,
  computeReceiptRoot,
  computeTxRoot,
  decodeBlock,
  decodeCertificate,
  decodeHeader,
  decodeReceipt,
  decodeSignedTx,
  decodeTxBody,
  encodeCertificate,
  encodeHeader,
  encodeReceipt,
  encodeTxBody,
  type Header,
  makeBlock,
  quorumSize,
  RECEIPT_VERSION,
  type Receipt,
  type SignedTx,
  signTx,
  type TxBody,
  txSender,
  verifyCommitCertificate,
  verifySignedTx,
} from "../../src/index.js";

const alice = generateKeyPair();

function body(over: Partial<TxBody> = {}): TxBody {
  return {
    version: 1,
    chainId: "custos-dev",
    nonce: fromHex("00112233445566778899aabbccddeeff"),
    blockLimit: 600,
    sender: alice.publicKey,
    to: "ecny",
    method: "transfer",
    args: encode(["0x1111111111111111111111111111111111111111", 1234n]),
    value: 0n,
    memo: null,
    ...over,
  };
}

function header(over: Partial<Header> = {}): Header {
  return {
    version: 1,
    chainId: "custos-dev",
    height: 42,
    prevHash: sm3(new Uint8Array([1])),
    timestamp: 1_795_000_000_000,
    proposer: 0,
    view: 0,
    txRoot: sm3(),
    receiptRoot: sm3(),
    stateRoot: sm3(new Uint8Array([2])),
    validatorSetHash: sm3(new Uint8Array([3])),
    ...over,
  };
}

function receipt(over: Partial<Receipt> = {}): Receipt {
  return {
    version: RECEIPT_VERSION,
    txHash: sm3(new Uint8Array([9])),
    success: true,
    gasUsed: 21_000n,
    output: new Uint8Array(),
    events: [
      {
        emitter: "ecny",
        name: "Transfer",
        data: encode([1n]),
        topics: ["0x00000000000000000000000000000000000000aa"],
        heads: [new Uint8Array(32).fill(5)],
      },
    ],
    errorCode: null,
    errorMessage: null,
    ...over,
  };
}

/** Same fields, properties inserted in the reverse order. */
function reversed<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).reverse()) as T;
}

describe("transactions", () => {
  it("sign, encode, decode and re-hash round-trip to the same bytes", () => {
    const stx = signTx(body({ value: 10_000_000_000n, memo: "预付卡充值" }), alice.privateKey);
    const back = decodeSignedTx(stx.bytes);
    expect(toHex(back.bytes)).toBe(toHex(stx.bytes));
    expect(toHex(back.body)).toBe(toHex(stx.body));
    expect(toHex(back.hash)).toBe(toHex(sm3(stx.body)));
    expect(back.tx.value).toBe(10_000_000_000n);
    expect(back.tx.memo).toBe("预付卡充值");
    expect(verifySignedTx(back)).toBe(true);
    expect(txSender(back.tx)).toBe(alice.address);
    expect(toHex(encodeTxBody(back.tx))).toBe(toHex(stx.body));
  });

  it("does not depend on property order", () => {
    expect(toHex(encodeTxBody(reversed(body())))).toBe(toHex(encodeTxBody(body())));
  });

  it("rejects a signature over other bytes", () => {
    const stx = signTx(body(), alice.privateKey);
    const forged: SignedTx = {
      ...stx,
      signature: sm2Sign(alice.privateKey, encodeTxBody(body({ value: 1n }))),
    };
    expect(verifySignedTx(forged)).toBe(false);
  });

  it("names the field for every malformed body", () => {
    const raw = (arr: unknown[]) => encode(arr);
    const good = [
      1,
      "custos-dev",
      new Uint8Array(16),
      600n,
      alice.publicKey,
      "ecny",
      "transfer",
      new Uint8Array(),
      0n,
      null,
    ];
    const withField = (i: number, v: unknown) => raw(good.map((x, j) => (j === i ? v : x)));
    const cases: [Uint8Array, string, string][] = [
      [withField(0, 2), "DECODE_UNKNOWN_VERSION", "version"],
      [withField(1, "has space"), "DECODE_OUT_OF_RANGE", "chainId"],
      [withField(2, new Uint8Array(15)), "DECODE_WRONG_LENGTH", "nonce"],
      [withField(3, 600), "DECODE_WRONG_TYPE", "blockLimit"],
      [withField(3, 2n ** 60n), "DECODE_OUT_OF_RANGE", "blockLimit"],
      [withField(4, new Uint8Array(65)), "DECODE_WRONG_LENGTH", "sender"],
      [withField(4, new Uint8Array(33)), "DECODE_OUT_OF_RANGE", "sender"],
      [withField(5, "0xABC"), "DECODE_OUT_OF_RANGE", "to"],
      [withField(6, "no-dash"), "DECODE_OUT_OF_RANGE", "method"],
      [withField(7, "text"), "DECODE_WRONG_TYPE", "args"],
      [withField(8, 1.5), "DECODE_WRONG_TYPE", "value"],
      [withField(8, -1n), "DECODE_OUT_OF_RANGE", "value"],
      [withField(9, "x".repeat(257)), "DECODE_WRONG_LENGTH", "memo"],
      [raw(good.slice(0, 9)), "DECODE_WRONG_LENGTH", ""],
    ];
    for (const [bytes, code, field] of cases) {
      expect(() => decodeTxBody(bytes), `${code} ${field}`).toThrow(
        expect.objectContaining({ code, meta: { structure: "Tx", field } }),
      );
    }
  });

  it("refuses a non-canonical encoding of a valid body", () => {
    const canonical = encodeTxBody(body());
    // the same array, but the version written as uint8 (cc 01) instead of fixint (01)
    const alt = new Uint8Array([canonical[0] as number, 0xcc, ...canonical.subarray(1)]);
    expect(() => decodeTxBody(alt)).toThrow(expect.objectContaining({ code: "DECODE_NON_CANONICAL" }));
    const stx = signTx(body(), alice.privateKey);
    // the envelope with its body as bin32 (c6), which no encoder writes for under 64 KiB
    const b = stx.body;
    const wide = new Uint8Array([
      0x92,
      0xc6,
      0,
      0,
      b.length >> 8,
      b.length & 0xff,
      ...b,
      0xc4,
      64,
      ...stx.signature,
    ]);
    expect(() => decodeSignedTx(wide)).toThrow(
      expect.objectContaining({
        code: "DECODE_NON_CANONICAL",
        meta: expect.objectContaining({ structure: "SignedTx" }),
      }),
    );
    expect(decodeSignedTx(stx.bytes).hash).toEqual(stx.hash);
    // envelope with a trailing extra item
    expect(() => decodeSignedTx(encode([stx.body, stx.signature, 1]))).toThrow(
      expect.objectContaining({ code: "DECODE_WRONG_LENGTH" }),
    );
  });

  it("survives 3,000 random mutations of valid bytes with nothing but DecodeErrors", () => {
    const stx = signTx(body({ memo: "m" }), alice.privateKey);
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const m = stx.bytes.slice();
      for (let k = 0, n = 1 + rand(3); k < n; k++) m[rand(m.length)] = rand(256);
      const cut = rand(10) === 0 ? m.subarray(0, rand(m.length)) : m;
      try {
        const d = decodeSignedTx(cut);
        accepted++;
        expect(toHex(encode([d.body, d.signature]))).toBe(toHex(cut)); // whatever decodes is canonical
      } catch (err) {
        const code = (err as { code?: string }).code ?? "";
        if (!code.startsWith("DECODE_")) throw err;
      }
    }
    expect(accepted).toBeLessThan(3000);
  });
});

describe("headers and blocks", () => {
  it("round-trip exactly, hash = SM3(header bytes), independent of property order", () => {
    const h = header();
    const bytes = encodeHeader(h);
    expect(toHex(encodeHeader(reversed(h)))).toBe(toHex(bytes));
    expect(decodeHeader(bytes)).toEqual({
      ...h,
      prevHash: Buffer.from(h.prevHash),
      txRoot: Buffer.from(h.txRoot),
      receiptRoot: Buffer.from(h.receiptRoot),
      stateRoot: Buffer.from(h.stateRoot),
      validatorSetHash: Buffer.from(h.validatorSetHash),
    });
    expect(toHex(encodeHeader(decodeHeader(bytes)))).toBe(toHex(bytes));
  });

  it("a block keeps each transaction's exact bytes and checks txRoot", () => {
    const txs = [signTx(body(), alice.privateKey), signTx(body({ memo: "2" }), alice.privateKey)];
    const { block, bytes } = makeBlock(header({ txRoot: computeTxRoot(txs) }), txs);
    const back = decodeBlock(bytes);
    expect(toHex(back.hash)).toBe(toHex(block.hash));
    expect(toHex(back.hash)).toBe(toHex(sm3(encodeHeader(block.header))));
    expect(back.txs.map((t) => toHex(t.bytes))).toEqual(txs.map((t) => toHex(t.bytes)));
    const wrongRoot = makeBlock(header({ txRoot: sm3() }), txs).bytes;
    expect(() => decodeBlock(wrongRoot)).toThrow(expect.objectContaining({ code: "BLOCK_TX_ROOT_MISMATCH" }));
    expect(() => decodeBlock(encode([encodeHeader(header()), [new Uint8Array([1, 2])]]))).toThrow(
      expect.objectContaining({ code: "DECODE_MALFORMED" }),
    );
  });

  it("names header fields", () => {
    const good = encodeHeader(header());
    const arr = [1, "custos-dev", 42n, new Uint8Array(31), 1n, 0, 0n, sm3(), sm3(), sm3(), sm3()];
    expect(() => decodeHeader(encode(arr))).toThrow(
      expect.objectContaining({
        code: "DECODE_WRONG_LENGTH",
        meta: { structure: "Header", field: "prevHash" },
      }),
    );
    expect(() => decodeHeader(new Uint8Array([...good, 0]))).toThrow(
      expect.objectContaining({ code: "DECODE_MALFORMED" }),
    );
  });
});

describe("receipts", () => {
  it("round-trip exactly and build a receipt root", () => {
    const r = receipt();
    const bytes = encodeReceipt(r);
    expect(toHex(encodeReceipt(decodeReceipt(bytes)))).toBe(toHex(bytes));
    expect(toHex(encodeReceipt(reversed(r)))).toBe(toHex(bytes));
    const failed = receipt({
      success: false,
      events: [],
      errorCode: "INSUFFICIENT_BALANCE",
      errorMessage: "balance 5 < 10",
    });
    expect(decodeReceipt(encodeReceipt(failed)).errorCode).toBe("INSUFFICIENT_BALANCE");
    expect(computeReceiptRoot([bytes]).byteLength).toBe(32);
    expect(() => decodeReceipt(encodeReceipt(receipt({ errorCode: "lower case" })))).toThrow(
      expect.objectContaining({ meta: { structure: "Receipt", field: "errorCode" } }),
    );
  });
});

describe("commit certificates", () => {
  const validators = [generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair()];
  const pubs = validators.map((v) => v.publicKey);
  const blockHash = sm3(new Uint8Array([7]));
  const cert = (signers: number[], over: Partial<CommitCertificate> = {}): CommitCertificate => {
    const base = { chainId: "custos-dev", height: 9, view: 1, blockHash, ...over };
    const msg = commitVoteBytes(base.chainId, base.height, base.view, base.blockHash);
    return {
      version: 1,
      ...base,
      signatures: signers.map((i) => ({
        validator: i,
        signature: sm2Sign((validators[i] as (typeof validators)[0]).privateKey, msg),
      })),
    };
  };
  const expected = { chainId: "custos-dev", height: 9, blockHash };

  it("quorum is n - floor((n-1)/3)", () => {
    expect([1, 2, 3, 4, 5, 7, 10, 16].map(quorumSize)).toEqual([1, 2, 3, 3, 4, 5, 7, 11]);
  });

  it("round-trips and verifies with a quorum of valid signatures", () => {
    const c = cert([0, 2, 3]);
    const back = decodeCertificate(encodeCertificate(c));
    expect(toHex(encodeCertificate(back))).toBe(toHex(encodeCertificate(c)));
    expect(() => verifyCommitCertificate(back, expected, pubs)).not.toThrow();
  });

  it("refuses too few signatures, a bad signature, an unknown validator, another block or chain", () => {
    const bad: [CommitCertificate, RegExp][] = [
      [cert([0, 1]), /quorum is 3/],
      [
        {
          ...cert([0, 1, 2]),
          signatures: cert([0, 1, 2]).signatures.map((s, i) =>
            i === 1 ? { ...s, signature: new Uint8Array(64) } : s,
          ),
        },
        /bad signature from validator 1/,
      ],
      [cert([0, 1, 2], { blockHash: sm3() }), /certifies block/],
      [cert([0, 1, 2], { chainId: "other" }), /chain id/],
      [cert([0, 1, 2], { height: 10 }), /certifies height 10/],
    ];
    for (const [c, why] of bad) {
      expect(() => verifyCommitCertificate(c, expected, pubs)).toThrow(
        expect.objectContaining({ code: "CERT_INVALID", message: expect.stringMatching(why) }),
      );
    }
    const c = cert([0, 1, 2]);
    expect(() =>
      verifyCommitCertificate(
        { ...c, signatures: [...c.signatures, { validator: 9, signature: new Uint8Array(64) }] },
        expected,
        pubs,
      ),
    ).toThrow(/validator 9 is not in a set of 4/);
  });

  it("requires strictly ascending validator indexes on the wire", () => {
    const c = cert([0, 1, 2]);
    const dup = encodeCertificate({
      ...c,
      signatures: [c.signatures[1], c.signatures[0], c.signatures[2]] as CommitCertificate["signatures"],
    });
    expect(() => decodeCertificate(dup)).toThrow(expect.objectContaining({ code: "DECODE_OUT_OF_RANGE" }));
  });
});
