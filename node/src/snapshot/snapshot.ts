import {
  decode,
  encode,
  fieldAt,
  merkleRoot,
  readArray,
  readBytes,
  readSafeU64,
  readString,
  readUint,
} from "@custos/codec";
import { sm3 } from "@custos/crypto";
import {
  blockHash,
  type CommitCertificate,
  decodeBlock,
  decodeCertificate,
  decodeHeader,
  decodeValidatorSet,
  type Genesis,
  type GenesisValidator,
  type Header,
  LIMITS,
  type StateProof,
  VALIDATOR_SET_KEY,
  validatorSetHash,
  verifyCommitCertificate,
  verifyStateProof,
} from "@custos/types";
import { bytesEqual, CustosError } from "@custos/utils";

/**
 * A state snapshot (issue 18): what a new node needs to start at height H instead of replaying
 * the chain from genesis, every piece checkable against genesis alone.
 *
 * - `block`: block H (exact bytes) and its commit certificate.
 * - `setChanges`: every block up to H that changed the validator set, each with its header, its
 *   certificate and a state proof of the new set in its post-state: a joining node follows the
 *   sets from genesis, checking each certificate against the set in force, without the blocks in
 *   between.
 * - `window`: the headers of the blockLimitWindow blocks before H with their tx hashes (they
 *   hash-chain into block H's prevHash; each hash list matches its header's txRoot): the replay
 *   protection a node needs for the blocks it does not hold.
 * - `chunks`: SM3 digests of the state chunks (the state at H, every entry in key order); the
 *   chunks themselves travel separately and are checked against these; the rebuilt state tree's
 *   root must be block H's stateRoot.
 */
export interface SetChange {
  height: number;
  headerBytes: Uint8Array;
  certificate: Uint8Array;
  /** The validators system contract's stored set after this block. */
  value: Uint8Array;
  proof: StateProof;
}

export interface SnapshotMeta {
  chainId: string;
  height: number;
  block: Uint8Array;
  certificate: Uint8Array;
  setChanges: SetChange[];
  window: { headerBytes: Uint8Array; txHashes: Uint8Array[] }[];
  chunks: Uint8Array[];
  entries: number;
}

import { decodeProof, encodeProof } from "../ledger/proofCodec.js";

export type SnapshotErrorCode = "SNAPSHOT_INVALID" | "SNAPSHOT_UNAVAILABLE";

function invalid(message: string): CustosError<SnapshotErrorCode> {
  return new CustosError<SnapshotErrorCode>("SNAPSHOT_INVALID", `snapshot: ${message}`);
}

export function encodeSetChange(c: SetChange): unknown[] {
  return [BigInt(c.height), c.headerBytes, c.certificate, c.value, encodeProof(c.proof)];
}

export function decodeSetChange(v: unknown, where: string): SetChange {
  const S = "SetChange";
  const a = readArray(v, fieldAt(S, where), 5);
  return {
    height: readSafeU64(a[0], fieldAt(S, `${where}.height`)),
    headerBytes: readBytes(a[1], fieldAt(S, `${where}.header`), { max: LIMITS.maxHeaderBytes }),
    certificate: readBytes(a[2], fieldAt(S, `${where}.certificate`), { max: 64 * 1024 }),
    value: readBytes(a[3], fieldAt(S, `${where}.value`), { max: 1 << 20 }),
    proof: decodeProof(a[4], `${where}.proof`),
  };
}

export function encodeSnapshotMeta(m: SnapshotMeta): Uint8Array {
  return encode([
    1,
    m.chainId,
    BigInt(m.height),
    m.block,
    m.certificate,
    m.setChanges.map(encodeSetChange),
    m.window.map((w) => [w.headerBytes, Buffer.concat(w.txHashes)]),
    Buffer.concat(m.chunks),
    BigInt(m.entries),
  ]);
}

export function decodeSnapshotMeta(bytes: Uint8Array): SnapshotMeta {
  const S = "SnapshotMeta";
  const a = readArray(decode(bytes, S, 256 * 1024 * 1024), fieldAt(S, ""), 9);
  if (readUint(a[0], fieldAt(S, "version"), 255) !== 1) throw invalid("unknown version");
  const chunks = readBytes(a[7], fieldAt(S, "chunks"), { max: 32 * 1_000_000 });
  if (chunks.byteLength % 32 !== 0) throw invalid("chunk digests are 32 bytes each");
  return {
    chainId: readString(a[1], fieldAt(S, "chainId"), { max: 64 }),
    height: readSafeU64(a[2], fieldAt(S, "height")),
    block: readBytes(a[3], fieldAt(S, "block"), { max: LIMITS.maxBlockBytes }),
    certificate: readBytes(a[4], fieldAt(S, "certificate"), { max: 64 * 1024 }),
    setChanges: readArray(a[5], fieldAt(S, "setChanges"), { min: 0, max: 100_000 }).map((c, i) =>
      decodeSetChange(c, `setChanges[${i}]`),
    ),
    window: readArray(a[6], fieldAt(S, "window"), { min: 0, max: 100_000 }).map((w, i) => {
      const p = readArray(w, fieldAt(S, `window[${i}]`), 2);
      const hashes = readBytes(p[1], fieldAt(S, `window[${i}].txHashes`), {
        max: 32 * LIMITS.maxTxsPerBlock,
      });
      if (hashes.byteLength % 32 !== 0) throw invalid(`window[${i}]: tx hashes are 32 bytes each`);
      const txHashes: Uint8Array[] = [];
      for (let k = 0; k < hashes.byteLength; k += 32) txHashes.push(hashes.slice(k, k + 32));
      return {
        headerBytes: readBytes(p[0], fieldAt(S, `window[${i}].header`), { max: LIMITS.maxHeaderBytes }),
        txHashes,
      };
    }),
    chunks: Array.from({ length: chunks.byteLength / 32 }, (_, i) => chunks.slice(32 * i, 32 * i + 32)),
    entries: readSafeU64(a[8], fieldAt(S, "entries")),
  };
}

export interface VerifiedSnapshot {
  meta: SnapshotMeta;
  header: Header;
  blockHash: Uint8Array;
  certificate: CommitCertificate;
  /** The validators that sign block H + 1 onwards, as the history says. */
  validators: GenesisValidator[];
}

/**
 * Checks everything about a snapshot but its state: the validator sets from genesis through each
 * change (certificate by the set in force, the new set proven in the block's state), block H's
 * certificate by the set in force at H, and the replay window's headers and tx hashes chained
 * into block H. `verify` checks one SM2 signature (the verifier pool's, or sm2Verify).
 */
export function verifySnapshotMeta(
  genesis: Genesis,
  meta: SnapshotMeta,
  verify: (pub: Uint8Array, msg: Uint8Array, sig: Uint8Array) => boolean,
): VerifiedSnapshot {
  if (meta.chainId !== genesis.chainId) throw invalid(`of chain ${meta.chainId}, not ${genesis.chainId}`);
  let current: GenesisValidator[] = genesis.consensus.validators;
  const block = decodeBlock(meta.block);
  const header = block.header;
  if (header.height !== meta.height) throw invalid(`its block is ${header.height}, not ${meta.height}`);
  let last = 0;
  const apply = (c: SetChange, i: number) => {
    const h = decodeHeader(c.headerBytes);
    if (h.height !== c.height || c.height <= last) throw invalid(`set change ${i}: heights out of order`);
    last = c.height;
    if (!bytesEqual(h.validatorSetHash, validatorSetHash(current.map((v) => v.publicKey))))
      throw invalid(
        `set change ${i} (block ${c.height}): its header names another validator set than the one in force`,
      );
    const cert = decodeCertificate(c.certificate);
    try {
      verifyCommitCertificate(
        cert,
        { chainId: genesis.chainId, height: c.height, blockHash: blockHash(c.headerBytes) },
        current.map((v) => v.publicKey),
        verify,
      );
      verifyStateProof(h.stateRoot, VALIDATOR_SET_KEY, c.value, c.proof);
    } catch (err) {
      throw invalid(`set change ${i} (block ${c.height}): ${(err as Error).message}`);
    }
    current = decodeValidatorSet(c.value);
  };
  meta.setChanges.forEach((c, i) => {
    if (c.height < meta.height) apply(c, i);
  });
  if (!bytesEqual(header.validatorSetHash, validatorSetHash(current.map((v) => v.publicKey))))
    throw invalid(
      `block ${meta.height} names another validator set than the history gives: a change is missing`,
    );
  const certificate = decodeCertificate(meta.certificate);
  try {
    verifyCommitCertificate(
      certificate,
      { chainId: genesis.chainId, height: meta.height, blockHash: block.hash },
      current.map((v) => v.publicKey),
      verify,
    );
  } catch (err) {
    throw invalid(`block ${meta.height}: ${(err as Error).message}`);
  }
  meta.setChanges.forEach((c, i) => {
    if (c.height === meta.height) apply(c, i);
    else if (c.height > meta.height) throw invalid(`set change ${i} is above the snapshot's height`);
  });
  // the window: each header's hash is the next one's prevHash, up to block H's
  let next = header;
  for (let i = meta.window.length - 1; i >= 0; i--) {
    const w = meta.window[i] as SnapshotMeta["window"][number];
    const h = decodeHeader(w.headerBytes);
    if (h.height !== next.height - 1 || !bytesEqual(blockHash(w.headerBytes), next.prevHash))
      throw invalid(`window block ${h.height} does not chain into block ${next.height}`);
    if (!bytesEqual(merkleRoot(w.txHashes), h.txRoot))
      throw invalid(`window block ${h.height}: tx hashes do not match its txRoot`);
    next = h;
  }
  const expected = Math.min(genesis.blockLimitWindow - 1, meta.height - 1);
  if (meta.window.length !== expected)
    throw invalid(`the replay window has ${meta.window.length} blocks, not ${expected}`);
  return { meta, header, blockHash: block.hash, certificate, validators: current };
}

/** The digest a state chunk is checked against. */
export function chunkDigest(chunk: Uint8Array): Uint8Array {
  return sm3(chunk);
}

export function encodeChunk(entries: [Uint8Array, Uint8Array][]): Uint8Array {
  return encode(entries);
}

export function decodeChunk(bytes: Uint8Array): [Uint8Array, Uint8Array][] {
  const S = "SnapshotChunk";
  return readArray(decode(bytes, S, 64 * 1024 * 1024), fieldAt(S, "")).map((e, i) => {
    const a = readArray(e, fieldAt(S, `[${i}]`), 2);
    return [
      readBytes(a[0], fieldAt(S, `[${i}].key`), { max: 4096 }),
      readBytes(a[1], fieldAt(S, `[${i}].value`), { max: 1 << 20 }),
    ];
  });
}

export const snapshotName = (height: number) => `${height.toString().padStart(12, "0")}.snap`;
