import { createCipheriv, createHmac, timingSafeEqual } from "node:crypto";
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

/** The keys of one direction in one epoch. */
class Epoch {
  readonly enc: Uint8Array;
  readonly mac: Uint8Array;
  records = 0;
  bytes = 0;

  constructor(readonly secret: Uint8Array) {
    const k = recordKeys(secret);
    this.enc = k.enc;
    this.mac = k.mac;
  }

  /** The next epoch; this one's secret and keys are wiped. */
  next(): Epoch {
    const n = new Epoch(nextTrafficSecret(this.secret));
    this.secret.fill(0);
    this.enc.fill(0);
    this.mac.fill(0);
    return n;
  }

  wipe(): void {
    this.secret.fill(0);
    this.enc.fill(0);
    this.mac.fill(0);
  }
}

/** IV of SM4-CTR for record `seq`: seq(8, big-endian) || 0^64; a record is < 2^64 blocks. */
function ivOf(hi: number, lo: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(hi, 0);
  iv.writeUInt32BE(lo, 4);
  return iv;
}

function tagOf(mac: Uint8Array, header: Uint8Array, ciphertext: Uint8Array): Buffer {
  return createHmac("sm3", mac).update(header).update(ciphertext).digest();
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
      const c = createCipheriv("sm4-ctr", this.epoch.enc, ivOf(hi, lo));
      const ct = c.update(plaintext);
      body.set(ct);
      c.final();
    }
    out.set(
      tagOf(this.epoch.mac, out.subarray(0, RECORD_HEADER_LEN), body),
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
    const expected = tagOf(this.epoch.mac, header, ct);
    if (!timingSafeEqual(expected, tag))
      throw refusal("SM_RECORD_MAC", `record ${this.seq} fails its MAC`, { seq: this.seq });
    const seq = this.seq;
    this.seq++;
    if (header[0] === RecordType.keyUpdate) {
      this.epoch = this.epoch.next();
      this.updates++;
      return undefined;
    }
    const c = createCipheriv("sm4-ctr", this.epoch.enc, ivOf(Math.floor(seq / TWO_32), seq % TWO_32));
    const pt = new Uint8Array(c.update(ct));
    c.final();
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
