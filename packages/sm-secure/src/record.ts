import { type Cipher, createCipheriv, createHash, type Hash, timingSafeEqual } from "node:crypto";
import type { CustosError } from "@custos/utils";
import { refusal, type SmSecureErrorCode } from "./errors.js";
import { nextTrafficSecret, recordKeys } from "./keySchedule.js";

/** Record content types. */
export const RecordType = { data: 0x17, keyUpdate: 0x18 } as const;
/** type(1) || seq(8, big-endian) || length(2, big-endian) */
export const RECORD_HEADER_LEN = 11;
/** HMAC-SM3, untruncated. */
export const RECORD_TAG_LEN = 32;
/** The most plaintext one record carries. */
export const MAX_RECORD_PLAINTEXT = 16_384;
/** What one key may protect before the sender must update it (receivers enforce both). */
export const MAX_EPOCH_RECORDS = 2 ** 20;
export const MAX_EPOCH_BYTES = 2 ** 30;
/** This implementation counts sequence numbers in a double: it closes before 2^53. */
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
const TWO_32 = 2 ** 32;

export interface RekeyLimits {
  /** Data records under one key before a key update (at most MAX_EPOCH_RECORDS). */
  records: number;
  /** Plaintext bytes under one key before a key update (at most MAX_EPOCH_BYTES). */
  bytes: number;
}

export const DEFAULT_REKEY: RekeyLimits = { records: MAX_EPOCH_RECORDS, bytes: MAX_EPOCH_BYTES };

const SM3_BLOCK = 64;

/**
 * Counter blocks u32(hi) || u32(lo) || u32(0) || u32(j) for the largest record, j = 0, 1, ...:
 * the block numbers and zeros are written once, a record writes only its sequence number (crypt
 * is synchronous, so one set serves every connection). `npm run bench -- hot-path` measures a
 * record's seal; building the blocks in a fresh buffer per record, as this did until
 * 2026-12-03, took longer than the SM4 itself.
 */
const COUNTER_BLOCKS = (MAX_RECORD_PLAINTEXT + 15) >>> 4;
const counters = new Uint8Array(COUNTER_BLOCKS * 16);
const counterView = new DataView(counters.buffer);
for (let j = 0; j < COUNTER_BLOCKS; j++) counterView.setUint32(j * 16 + 12, j);

/**
 * The keys of one direction in one epoch, as OpenSSL contexts made once per epoch: creating a
 * cipher or HMAC context per record costs more than protecting a small record (OpenSSL 3 fetches
 * the algorithm every time). SM4-CTR is computed as SM4-ECB of the counter blocks
 * u64(seq) || u64(block) XORed onto the data (exactly what CTR with IV u64(seq) || 0^64 gives,
 * the low half never carrying), and HMAC-SM3 from the two hash states after K xor ipad and
 * K xor opad (RFC 2104), copied per record.
 */
class Epoch {
  private readonly ecb: Cipher;
  private readonly inner: Hash;
  private readonly outer: Hash;
  records = 0;
  bytes = 0;

  constructor(readonly secret: Uint8Array) {
    const k = recordKeys(secret);
    this.ecb = createCipheriv("sm4-ecb", k.enc, null);
    this.ecb.setAutoPadding(false);
    const pad = Buffer.alloc(SM3_BLOCK); // the 32-byte MAC key, zero-padded to the block size
    pad.set(k.mac);
    const ipad = pad.map((b) => b ^ 0x36);
    const opad = pad.map((b) => b ^ 0x5c);
    this.inner = createHash("sm3").update(ipad);
    this.outer = createHash("sm3").update(opad);
    for (const x of [pad, ipad, opad, k.enc, k.mac]) x.fill(0);
  }

  /** The next epoch; this one's secret is wiped (its OpenSSL contexts are freed with it). */
  next(): Epoch {
    const n = new Epoch(nextTrafficSecret(this.secret));
    this.secret.fill(0);
    return n;
  }

  wipe(): void {
    this.secret.fill(0);
  }

  /** XORs the SM4-CTR keystream of record seq = hi * 2^32 + lo onto `data`, in place. */
  crypt(hi: number, lo: number, data: Uint8Array): void {
    const n = data.byteLength;
    const blocks = (n + 15) >>> 4;
    // a short keystream would leave the rest of `data` unencrypted
    if (blocks > COUNTER_BLOCKS)
      throw new RangeError(`a record of ${n} bytes (limit ${MAX_RECORD_PLAINTEXT})`);
    for (let j = 0; j < blocks; j++) {
      counterView.setUint32(j * 16, hi);
      counterView.setUint32(j * 16 + 4, lo);
    }
    const ks = this.ecb.update(counters.subarray(0, blocks * 16));
    for (let i = 0; i < n; i++) data[i] = (data[i] as number) ^ (ks[i] as number);
    ks.fill(0);
  }

  /** HMAC-SM3(mac key, header || ciphertext). */
  tag(header: Uint8Array, ciphertext: Uint8Array): Buffer {
    const h = this.inner.copy().update(header).update(ciphertext).digest();
    return this.outer.copy().update(h).digest();
  }
}

/** Something that holds bytes: a Uint8Array or libp2p's Uint8ArrayList. */
export interface ByteSource {
  readonly byteLength: number;
  subarray(start?: number, end?: number): Uint8Array;
}

/**
 * Seals what one side sends into records: SM4-CTR, then HMAC-SM3 over header || ciphertext
 * (encrypt-then-MAC), sequence numbers from 0, one higher per record, never reused; a key update
 * before the limits of one key are reached.
 */
export class RecordSealer {
  private epoch: Epoch;
  private seq = 0;
  private readonly limits: RekeyLimits;
  private wiped = false;
  /** Key updates sent. */
  updates = 0;

  constructor(secret: Uint8Array, limits: Partial<RekeyLimits> = {}) {
    this.epoch = new Epoch(secret);
    this.limits = {
      records: Math.min(limits.records ?? MAX_EPOCH_RECORDS, MAX_EPOCH_RECORDS),
      bytes: Math.min(limits.bytes ?? MAX_EPOCH_BYTES, MAX_EPOCH_BYTES),
    };
    if (!(this.limits.records >= 1 && this.limits.bytes >= MAX_RECORD_PLAINTEXT))
      throw new RangeError(`rekey limits must allow one full record (got ${JSON.stringify(limits)})`);
  }

  /** The records carrying `data` (split at MAX_RECORD_PLAINTEXT), as one buffer to send. */
  seal(data: ByteSource): Uint8Array {
    if (this.wiped) throw new Error("the connection's keys are gone: it is closed");
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let at = 0; at < data.byteLength; at += MAX_RECORD_PLAINTEXT) {
      const chunk = data.subarray(at, Math.min(data.byteLength, at + MAX_RECORD_PLAINTEXT));
      const e = this.epoch;
      if (e.records + 1 > this.limits.records || e.bytes + chunk.byteLength > this.limits.bytes) {
        const update = this.record(RecordType.keyUpdate, new Uint8Array(0));
        parts.push(update);
        total += update.byteLength;
        this.epoch = e.next();
        this.updates++;
      }
      const r = this.record(RecordType.data, chunk);
      this.epoch.records++;
      this.epoch.bytes += chunk.byteLength;
      parts.push(r);
      total += r.byteLength;
    }
    if (parts.length === 1) return parts[0] as Uint8Array;
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }

  private record(type: number, plaintext: Uint8Array): Uint8Array {
    if (this.seq >= MAX_SEQ)
      throw refusal("SM_SEQUENCE_EXHAUSTED", "this side's record sequence numbers are used up");
    const hi = Math.floor(this.seq / TWO_32);
    const lo = this.seq % TWO_32;
    this.seq++;
    const out = Buffer.allocUnsafe(RECORD_HEADER_LEN + plaintext.byteLength + RECORD_TAG_LEN);
    out[0] = type;
    out.writeUInt32BE(hi, 1);
    out.writeUInt32BE(lo, 5);
    out.writeUInt16BE(plaintext.byteLength, 9);
    const body = out.subarray(RECORD_HEADER_LEN, RECORD_HEADER_LEN + plaintext.byteLength);
    if (plaintext.byteLength > 0) {
      body.set(plaintext);
      this.epoch.crypt(hi, lo, body);
    }
    out.set(
      this.epoch.tag(out.subarray(0, RECORD_HEADER_LEN), body),
      RECORD_HEADER_LEN + plaintext.byteLength,
    );
    return out;
  }

  wipe(): void {
    this.wiped = true;
    this.epoch.wipe();
  }
}

/**
 * Opens the records one side receives, from bytes in whatever chunks the connection delivers.
 * Refuses, and stays refused, at the first record that is too large, of an unknown type, out of
 * sequence, fails its MAC, or exceeds what one key may protect.
 */
export class RecordOpener {
  private epoch: Epoch;
  private seq = 0;
  private chunks: Uint8Array[] = [];
  private have = 0;
  private failed: CustosError<SmSecureErrorCode> | undefined;
  /** Key updates received. */
  updates = 0;

  /**
   * `limits`: what this side accepts under one key; the protocol's maxima (what every sender
   * keeps to) unless both sides agreed on lower ones.
   */
  constructor(
    secret: Uint8Array,
    private readonly limits: RekeyLimits = DEFAULT_REKEY,
  ) {
    this.epoch = new Epoch(secret);
  }

  /** Bytes held of a record not complete yet. */
  get pending(): number {
    return this.have;
  }

  /** The plaintexts of every record completed by `chunk`. Throws an SM_RECORD_* refusal. */
  open(chunk: Uint8Array): Uint8Array[] {
    if (this.failed) throw this.failed;
    if (chunk.byteLength > 0) {
      this.chunks.push(chunk);
      this.have += chunk.byteLength;
    }
    const out: Uint8Array[] = [];
    try {
      for (;;) {
        if (this.have < RECORD_HEADER_LEN) break;
        const header = this.peek(RECORD_HEADER_LEN);
        const length = this.checkHeader(header);
        const size = RECORD_HEADER_LEN + length + RECORD_TAG_LEN;
        if (this.have < size) break;
        const rec = this.take(size);
        const pt = this.openRecord(rec, length);
        if (pt) out.push(pt);
      }
    } catch (err) {
      this.failed = err as CustosError<SmSecureErrorCode>;
      this.chunks = [];
      this.have = 0;
      this.epoch.wipe();
      throw err;
    }
    return out;
  }

  private checkHeader(h: Uint8Array): number {
    const type = h[0] as number;
    const view = new DataView(h.buffer, h.byteOffset, h.byteLength);
    const hi = view.getUint32(1);
    const lo = view.getUint32(5);
    const length = view.getUint16(9);
    if (type !== RecordType.data && type !== RecordType.keyUpdate)
      throw refusal("SM_RECORD_TYPE", `a record of unknown type ${type}`, { type });
    if (type === RecordType.data && length > MAX_RECORD_PLAINTEXT)
      throw refusal("SM_RECORD_TOO_LARGE", `a record of ${length} bytes (limit ${MAX_RECORD_PLAINTEXT})`, {
        length,
      });
    if (type === RecordType.keyUpdate && length !== 0)
      throw refusal("SM_RECORD_TOO_LARGE", "a key update carries no data", { length });
    if (type === RecordType.data && length === 0)
      throw refusal("SM_RECORD_EMPTY", "a data record without data");
    const seq = hi * TWO_32 + lo;
    if (hi >= 2 ** 21 || seq !== this.seq)
      throw refusal(
        "SM_RECORD_SEQUENCE",
        seq < this.seq
          ? `record ${seq} again (replayed; expected ${this.seq})`
          : `record ${seq} where ${this.seq} was due`,
        { expected: this.seq, got: hi >= 2 ** 21 ? `${hi}:${lo}` : seq },
      );
    if (type === RecordType.data) {
      const e = this.epoch;
      if (e.records + 1 > this.limits.records || e.bytes + length > this.limits.bytes)
        throw refusal(
          "SM_REKEY_OVERDUE",
          "the peer went past what one key may protect without a key update",
          {
            records: e.records,
            bytes: e.bytes,
          },
        );
    }
    return length;
  }

  private openRecord(rec: Uint8Array, length: number): Uint8Array | undefined {
    const header = rec.subarray(0, RECORD_HEADER_LEN);
    const ct = rec.subarray(RECORD_HEADER_LEN, RECORD_HEADER_LEN + length);
    const tag = rec.subarray(RECORD_HEADER_LEN + length);
    const expected = this.epoch.tag(header, ct);
    if (!timingSafeEqual(expected, tag))
      throw refusal("SM_RECORD_MAC", `record ${this.seq} fails its MAC`, { seq: this.seq });
    const seq = this.seq;
    this.seq++;
    if (header[0] === RecordType.keyUpdate) {
      this.epoch = this.epoch.next();
      this.updates++;
      return undefined;
    }
    const pt = Uint8Array.from(ct);
    this.epoch.crypt(Math.floor(seq / TWO_32), seq % TWO_32, pt);
    this.epoch.records++;
    this.epoch.bytes += length;
    return pt;
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    if (first.byteLength >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.byteLength, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (at === n) break;
    }
    return out;
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    let out: Uint8Array;
    if (first.byteLength >= n) {
      out = first.subarray(0, n);
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0] as Uint8Array;
        const k = Math.min(c.byteLength, n - at);
        out.set(c.subarray(0, k), at);
        at += k;
        if (k === c.byteLength) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.have -= n;
    return out;
  }

  wipe(): void {
    this.epoch.wipe();
    this.chunks = [];
    this.have = 0;
  }
}
