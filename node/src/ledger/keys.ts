/**
 * One key space per kind of data, each behind a one-byte prefix. A prefix is never reused: a
 * retired bucket stays here as a comment.
 */
export const Bucket = {
  meta: 0x01,
  /** height (8 bytes BE) -> encoded block */
  block: 0x02,
  /** block hash -> height */
  blockHash: 0x03,
  /** height -> encoded commit certificate */
  certificate: 0x04,
  /** tx hash -> [height, index] */
  txIndex: 0x05,
  /** height -> msgpack array of encoded receipts */
  receipts: 0x06,
  /** contract name || 0x00 || key -> value */
  state: 0x07,
  // 0x08: reserved for the consensus WAL (issue 4)
} as const;

export const META_HEAD = new Uint8Array([Bucket.meta, 1]);
export const META_GENESIS = new Uint8Array([Bucket.meta, 2]);

export function heightKey(bucket: number, height: number): Uint8Array {
  const k = new Uint8Array(9);
  k[0] = bucket;
  new DataView(k.buffer).setBigUint64(1, BigInt(height));
  return k;
}

export function prefixed(bucket: number, body: Uint8Array): Uint8Array {
  const k = new Uint8Array(body.byteLength + 1);
  k[0] = bucket;
  k.set(body, 1);
  return k;
}

const utf8 = new TextEncoder();

/** The LevelDB key of a contract's state entry. Contract names never contain 0x00. */
export function stateKey(contract: string, key: string | Uint8Array): Uint8Array {
  const c = utf8.encode(contract);
  const k = typeof key === "string" ? utf8.encode(key) : key;
  const out = new Uint8Array(2 + c.byteLength + k.byteLength);
  out[0] = Bucket.state;
  out.set(c, 1);
  out[1 + c.byteLength] = 0;
  out.set(k, 2 + c.byteLength);
  return out;
}
