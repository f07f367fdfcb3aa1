import type { Level } from "level";

export type Db = Level<Uint8Array, Uint8Array>;

/** Where a block's writes gather before one atomic write (LevelDB's chained batch). */
export interface Batch {
  put(key: Uint8Array, value: Uint8Array): unknown;
  del(key: Uint8Array): unknown;
}

/** Keys and values up to this size are copied into a SlabBatch's slabs (V8 keeps typed arrays up to 64 bytes on its heap). */
const SMALL = 64;
const SLAB_BYTES = 64 * 1024;

/**
 * A chained batch that hands LevelDB its small keys and values as views of a few large buffers.
 * A small Uint8Array lives on V8's heap, and when native code asks for its bytes (as classic-level's
 * put does for every key and value) V8 gives it a backing store of its own; perf of a node showed
 * the backing-store registry and sweeper. In a micro-benchmark of 200,000 puts of 20-byte keys and
 * values a put cost 2.5-3.2 us of CPU as given and 0.9-1.3 us through slabs. A slab is never
 * written twice, so a view stays valid for as long as anyone holds it.
 */
export class SlabBatch implements Batch {
  private slab: Buffer = Buffer.alloc(0);
  private at = 0;
  constructor(private readonly inner: ReturnType<Db["batch"]>) {}

  private view(b: Uint8Array): Uint8Array {
    const n = b.byteLength;
    if (n > SMALL) return b;
    if (this.at + n > this.slab.byteLength) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.at = 0;
    }
    const v = this.slab.subarray(this.at, this.at + n);
    v.set(b);
    this.at += n;
    return v;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.inner.put(this.view(key), this.view(value));
  }

  del(key: Uint8Array): void {
    this.inner.del(this.view(key));
  }

  write(options: { sync?: boolean } = {}): Promise<void> {
    return this.inner.write(options);
  }
}

/** How a repository's values are stored: encode on write, decode (and check) on read. */
export interface ValueCodec<V> {
  encode(value: V): Uint8Array;
  decode(bytes: Uint8Array): V;
}

/**
 * One bucket of the ledger as a typed key-value store (Lodestar's repository pattern): a
 * one-byte prefix (ledger/buckets.ts, never reused), a key codec and a value codec that checks
 * what it reads. Writes go into a batch that the caller writes once for everything a block
 * changes, across buckets.
 */
export class Repository<K, V> {
  constructor(
    private readonly db: Db,
    readonly bucket: number,
    private readonly keyOf: (k: K) => Uint8Array,
    private readonly codec: ValueCodec<V>,
  ) {}

  key(k: K): Uint8Array {
    const body = this.keyOf(k);
    const out = new Uint8Array(body.byteLength + 1);
    out[0] = this.bucket;
    out.set(body, 1);
    return out;
  }

  async get(k: K): Promise<V | undefined> {
    const raw = await this.db.get(this.key(k));
    return raw === undefined ? undefined : this.codec.decode(raw);
  }

  /** The stored bytes as they are (a block's exact encoding, for instance). */
  getBinary(k: K): Promise<Uint8Array | undefined> {
    return this.db.get(this.key(k));
  }

  put(batch: Batch, k: K, v: V): void {
    batch.put(this.key(k), this.codec.encode(v));
  }

  putBinary(batch: Batch, k: K, bytes: Uint8Array): void {
    batch.put(this.key(k), bytes);
  }
}

/** Heights as 8-byte big-endian keys, so that key order is height order. */
export function heightBytes(height: number): Uint8Array {
  const k = new Uint8Array(8);
  new DataView(k.buffer).setBigUint64(0, BigInt(height));
  return k;
}

export const bytesKey = (b: Uint8Array): Uint8Array => b;
