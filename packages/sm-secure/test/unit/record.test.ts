import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  MAX_RECORD_PLAINTEXT,
  RECORD_HEADER_LEN,
  RECORD_TAG_LEN,
  RecordOpener,
  RecordSealer,
  RecordType,
  recordKeys,
} from "../../src/index.js";
import { prng } from "../helpers.js";

const secret = () => new Uint8Array(randomBytes(32));

function link(opts: { records?: number; bytes?: number } = {}) {
  const s = secret();
  return { sealer: new RecordSealer(s.slice(), opts), opener: new RecordOpener(s.slice()) };
}

const records = (bytes: Uint8Array): Uint8Array[] => {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.byteLength; ) {
    const len = new DataView(bytes.buffer, bytes.byteOffset + at).getUint16(9);
    const size = RECORD_HEADER_LEN + len + RECORD_TAG_LEN;
    out.push(bytes.slice(at, at + size));
    at += size;
  }
  return out;
};

describe("records", () => {
  it("carry any data in any chunking; large writes split at the record limit", () => {
    const r = prng(7);
    const { sealer, opener } = link();
    const sent: Uint8Array[] = [];
    let wire = new Uint8Array(0);
    for (let k = 0; k < 50; k++) {
      const m = r.bytes(1 + r.int(k % 10 === 0 ? 70_000 : 500));
      sent.push(m);
      wire = Buffer.concat([wire, sealer.seal(m)]);
    }
    const got: Uint8Array[] = [];
    for (let at = 0; at < wire.byteLength; ) {
      const n = 1 + r.int(3000);
      got.push(...opener.open(wire.subarray(at, at + n)));
      at += n;
    }
    expect(Buffer.concat(got)).toEqual(Buffer.concat(sent));
    expect(opener.pending).toBe(0);
    const big = sealer.seal(new Uint8Array(MAX_RECORD_PLAINTEXT * 2 + 1));
    expect(records(big).map((x) => x.byteLength - RECORD_HEADER_LEN - RECORD_TAG_LEN)).toEqual([
      MAX_RECORD_PLAINTEXT,
      MAX_RECORD_PLAINTEXT,
      1,
    ]);
  });

  it("is SM4-CTR (IV = sequence number || 0) and HMAC-SM3 over header || ciphertext, as OpenSSL computes them", () => {
    const s = secret();
    const { enc, mac } = recordKeys(s);
    const sealer = new RecordSealer(s.slice());
    const r = prng(11);
    // sizes around block edges and the largest record: the keystream of every block is checked
    for (const [seq, size] of [
      [0, 1],
      [1, 16],
      [2, 17],
      [3, 1500],
      [4, MAX_RECORD_PLAINTEXT],
      [5, 33],
    ] as const) {
      const plaintext = r.bytes(size);
      const rec = sealer.seal(plaintext);
      const header = rec.subarray(0, RECORD_HEADER_LEN);
      const iv = Buffer.alloc(16);
      iv.writeUInt32BE(seq, 4);
      const want = createCipheriv("sm4-ctr", enc, iv).update(plaintext);
      const body = rec.subarray(RECORD_HEADER_LEN, RECORD_HEADER_LEN + size);
      expect(Buffer.from(body).equals(want), `record ${seq} (${size} bytes)`).toBe(true);
      const tag = createHmac("sm3", mac).update(header).update(body).digest();
      expect(Buffer.from(rec.subarray(RECORD_HEADER_LEN + size)).equals(tag)).toBe(true);
    }
  });

  it("a replayed record is refused by its sequence number, and the opener stays refused", () => {
    const { sealer, opener } = link();
    const a = sealer.seal(new Uint8Array([1, 2, 3]));
    expect(opener.open(a)).toHaveLength(1);
    expect(() => opener.open(a)).toThrow(expect.objectContaining({ code: "SM_RECORD_SEQUENCE" }));
    expect(() => opener.open(sealer.seal(new Uint8Array([4])))).toThrow(
      expect.objectContaining({ code: "SM_RECORD_SEQUENCE" }),
    );
  });

  it("reordered or dropped records are refused", () => {
    const { sealer, opener } = link();
    const a = sealer.seal(new Uint8Array([1]));
    const b = sealer.seal(new Uint8Array([2]));
    expect(() => opener.open(b)).toThrow(expect.objectContaining({ code: "SM_RECORD_SEQUENCE" }));
    void a;
  });

  it("a record changed anywhere is refused: MAC, or the header's own checks", () => {
    const { sealer } = link();
    const base = sealer.seal(new Uint8Array(100).fill(9));
    const codes = new Set<string>();
    for (let byte = 0; byte < base.byteLength; byte++) {
      for (const bit of [0, 3, 7]) {
        const s = secret();
        const fresh = new RecordSealer(s.slice()).seal(new Uint8Array(100).fill(9));
        const opener = new RecordOpener(s.slice());
        const bad = Uint8Array.from(fresh);
        bad[byte] = (bad[byte] as number) ^ (1 << bit);
        let code = "accepted";
        try {
          const out = opener.open(bad);
          if (out.length === 0 && opener.pending > 0) code = "waiting";
        } catch (err) {
          code = (err as { code: string }).code;
        }
        codes.add(code);
        // a longer length waits for bytes that never come (the connection's end refuses it)
        if (byte === 9 || byte === 10)
          expect(["waiting", "SM_RECORD_TOO_LARGE", "SM_RECORD_MAC"]).toContain(code);
        else expect(code).not.toBe("accepted");
      }
    }
    expect(codes).toContain("SM_RECORD_MAC");
    expect(codes).toContain("SM_RECORD_TYPE");
    expect(codes).toContain("SM_RECORD_SEQUENCE");
  });

  it("bounded: a header announcing more than the limit is refused before its body is read", () => {
    const { opener } = link();
    const h = new Uint8Array(RECORD_HEADER_LEN);
    h[0] = RecordType.data;
    new DataView(h.buffer).setUint16(9, MAX_RECORD_PLAINTEXT + 1);
    expect(() => opener.open(h)).toThrow(expect.objectContaining({ code: "SM_RECORD_TOO_LARGE" }));
    const k = link().opener;
    const u = new Uint8Array(RECORD_HEADER_LEN);
    u[0] = RecordType.keyUpdate;
    u[10] = 1;
    expect(() => k.open(u)).toThrow(expect.objectContaining({ code: "SM_RECORD_TOO_LARGE" }));
    const e = link().opener;
    const empty = new Uint8Array(RECORD_HEADER_LEN);
    empty[0] = RecordType.data;
    expect(() => e.open(empty)).toThrow(expect.objectContaining({ code: "SM_RECORD_EMPTY" }));
  });

  it("records from another connection (other keys) fail their MAC", () => {
    const a = link();
    const b = link();
    expect(() => b.opener.open(a.sealer.seal(new Uint8Array([1])))).toThrow(
      expect.objectContaining({ code: "SM_RECORD_MAC" }),
    );
  });

  it("rekeys after N records or B bytes; the receiver follows; old keys do not open new records", () => {
    const s = secret();
    const sealer = new RecordSealer(s.slice(), { records: 3, bytes: 40_000 });
    const opener = new RecordOpener(s.slice());
    const frozen = new RecordOpener(s.slice());
    let total = 0;
    for (let k = 0; k < 20; k++) {
      const m = new Uint8Array(k % 4 === 0 ? 20_000 : 10).fill(k);
      const out = opener.open(sealer.seal(m));
      total += out.reduce((n, p) => n + p.byteLength, 0);
    }
    expect(total).toBe(5 * 20_000 + 15 * 10);
    expect(sealer.updates).toBeGreaterThanOrEqual(6);
    expect(opener.updates).toBe(sealer.updates);
    // an opener that skipped the key updates cannot read the later records
    const later = sealer.seal(new Uint8Array([1]));
    expect(() => frozen.open(later)).toThrow(expect.objectContaining({ code: "SM_RECORD_SEQUENCE" }));
  });

  it("a sender that does not rekey in time is refused (SM_REKEY_OVERDUE)", () => {
    const s = secret();
    const sealer = new RecordSealer(s.slice(), { records: 10 });
    const opener = new RecordOpener(s.slice(), { records: 4, bytes: 1 << 30 });
    for (let k = 0; k < 4; k++) opener.open(sealer.seal(new Uint8Array([k])));
    expect(() => opener.open(sealer.seal(new Uint8Array([9])))).toThrow(
      expect.objectContaining({ code: "SM_REKEY_OVERDUE" }),
    );
  });

  it("keys are wiped: a sealer used after wipe() refuses to seal", () => {
    const { sealer } = link();
    sealer.wipe();
    expect(() => sealer.seal(new Uint8Array([1]))).toThrow(/closed/);
  });
});
