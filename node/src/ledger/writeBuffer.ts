import { sm3 } from "@custos/crypto";

const MIB = 1024 * 1024;
/** The range `ledger.writeBufferBytes` accepts in config.json. */
export const MIN_WRITE_BUFFER = MIB;
export const MAX_WRITE_BUFFER = 256 * MIB;
/** LevelDB's own default memtable size, the middle of the range a node's key picks from. */
const LEVELDB_DEFAULT = 4 * MIB;
const STEP = 64 * 1024;

/**
 * The memtable size of this node's ledger and audit index when config.json sets none: 3 to 5 MiB
 * in 64 KiB steps, fixed by the node's public key.
 *
 * Validators write the same blocks at the same heights. With equal memtables, every validator's
 * LevelDB flushes and compacts at the same moment. On 2026-12-05, 17 of the 18 block intervals
 * over 300 ms in a four-validator benchmark overlapped compactions of the same database on the
 * validators (benchmarks/README.md, "Where issue 14 stands (2026-12-05)"). Different sizes spread
 * that work over time. A quorum then waits for at most the one validator that is compacting, and
 * only when that validator leads. Storage only: nothing of this reaches consensus.
 */
export function writeBufferFor(publicKey: Uint8Array): number {
  const d = sm3(publicKey);
  const steps = (2 * MIB) / STEP; // 33 sizes from 3 MiB to 5 MiB
  const k = (((d[0] ?? 0) << 8) | (d[1] ?? 0)) % (steps + 1);
  return LEVELDB_DEFAULT - MIB + k * STEP;
}

/** Options for a LevelDB of Uint8Array keys and values, with this memtable size if one is given. */
export function levelOptions(writeBufferBytes?: number) {
  return {
    keyEncoding: "view",
    valueEncoding: "view",
    ...(writeBufferBytes === undefined ? {} : { writeBufferSize: writeBufferBytes }),
  } as const;
}

/**
 * Evenly spread memtable sizes for the `count` nodes of a testnet on one machine, 3 to 5 MiB, so
 * that no two of them compact in step (a node's key may land close to another's).
 */
export function spreadWriteBuffers(count: number): number[] {
  if (count <= 1) return Array.from({ length: count }, () => LEVELDB_DEFAULT);
  return Array.from(
    { length: count },
    (_, i) => LEVELDB_DEFAULT - MIB + Math.round((i * 2 * MIB) / (count - 1) / STEP) * STEP,
  );
}
