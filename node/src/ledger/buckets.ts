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
  /** contract name || 0x00 || key -> value (STATE_BUCKET of @custos/types, a chain rule) */
  state: 0x07,
  // 0x08: reserved for the consensus WAL, never used (the WAL is a file of its own)
  /**
   * height -> a validator-set change the block at that height made: [headerBytes, certificate,
   * the new set's stored value, its state proof]: what a snapshot carries so that a joining node
   * can follow the sets from genesis without the blocks in between.
   */
  setHistory: 0x09,
} as const;

export const META_HEAD = new Uint8Array([Bucket.meta, 1]);
export const META_GENESIS = new Uint8Array([Bucket.meta, 2]);
/** The lowest height whose block this ledger holds (absent: 0; a ledger started from a snapshot). */
export const META_BASE = new Uint8Array([Bucket.meta, 3]);
/** Tx hashes of the blocks of the replay window below the base: [[height, hashes concatenated]...]. */
export const META_WINDOW = new Uint8Array([Bucket.meta, 4]);
