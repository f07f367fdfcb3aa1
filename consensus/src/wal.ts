/**
 * The consensus write-ahead log's record format: [length u32 BE][crc32 u32 BE][payload]. A
 * record whose length runs past the end, or whose CRC does not match, is a torn tail (the
 * process died while appending): it and anything after it are dropped.
 */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3), as in zlib. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function frameRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, payload.byteLength);
  dv.setUint32(4, crc32(payload));
  out.set(payload, 8);
  return out;
}

export interface WalContents {
  records: Uint8Array[];
  /** Bytes after the last whole record (0 when the log ends cleanly). */
  tornBytes: number;
  /** Where the whole records end: the host truncates the file here before appending. */
  validLength: number;
}

export function readRecords(log: Uint8Array, maxRecord = 64 * 1024 * 1024): WalContents {
  const records: Uint8Array[] = [];
  const dv = new DataView(log.buffer, log.byteOffset, log.byteLength);
  let pos = 0;
  while (pos + 8 <= log.byteLength) {
    const len = dv.getUint32(pos);
    if (len > maxRecord || pos + 8 + len > log.byteLength) break;
    const payload = log.subarray(pos + 8, pos + 8 + len);
    if (crc32(payload) !== dv.getUint32(pos + 4)) break;
    records.push(payload);
    pos += 8 + len;
  }
  return { records, tornBytes: log.byteLength - pos, validLength: pos };
}

/** Where the host keeps the engine's records. The node's is a file with fsync; the simulator's is memory. */
export interface Wal {
  /** Appends and makes durable before returning. */
  append(record: Uint8Array): Promise<void> | void;
  /** Whole records in order, a torn tail dropped. */
  readAll(): Uint8Array[];
  /** After a block commits: keeps only `keep` (the records of heights not yet decided). */
  compact(keep: Uint8Array[]): Promise<void>;
  close(): Promise<void>;
}
