import {
  assertCanonical,
  assertEncodesAs,
  decode,
  encode,
  fieldAt,
  merkleRoot,
  readArray,
  readBytes,
  readSafeU64,
  readString,
  readUint,
  readVersion,
} from "@custos/codec";
import { sm3 } from "@custos/crypto";
import { bytesEqual, CustosError } from "@custos/utils";
import { CHAIN_ID_RE, LIMITS } from "./limits.js";
import { decodeSignedTx, type SignedTx } from "./tx.js";

export const HEADER_VERSION = 1;

/**
 * On the wire: [version, chainId, height, prevHash, timestamp, proposer, view, txRoot,
 * receiptRoot, stateRoot, validatorSetHash]. Block hash = SM3(header bytes).
 */
export interface Header {
  version: typeof HEADER_VERSION;
  chainId: string;
  height: number;
  prevHash: Uint8Array;
  /** Milliseconds since the epoch. */
  timestamp: number;
  /** Index of the proposer in the validator set. */
  proposer: number;
  view: number;
  txRoot: Uint8Array;
  receiptRoot: Uint8Array;
  stateRoot: Uint8Array;
  validatorSetHash: Uint8Array;
}

export function encodeHeader(h: Header): Uint8Array {
  return encode([
    h.version,
    h.chainId,
    BigInt(h.height),
    h.prevHash,
    BigInt(h.timestamp),
    h.proposer,
    BigInt(h.view),
    h.txRoot,
    h.receiptRoot,
    h.stateRoot,
    h.validatorSetHash,
  ]);
}

export function decodeHeader(bytes: Uint8Array): Header {
  const S = "Header";
  const a = readArray(decode(bytes, S, LIMITS.maxHeaderBytes), fieldAt(S, ""), 11);
  const h: Header = {
    version: readVersion(a[0], fieldAt(S, "version"), [HEADER_VERSION]) as typeof HEADER_VERSION,
    chainId: readString(a[1], fieldAt(S, "chainId"), { max: LIMITS.maxChainIdLength, pattern: CHAIN_ID_RE }),
    height: readSafeU64(a[2], fieldAt(S, "height")),
    prevHash: readBytes(a[3], fieldAt(S, "prevHash"), 32),
    timestamp: readSafeU64(a[4], fieldAt(S, "timestamp")),
    proposer: readUint(a[5], fieldAt(S, "proposer"), LIMITS.maxValidators - 1),
    view: readSafeU64(a[6], fieldAt(S, "view")),
    txRoot: readBytes(a[7], fieldAt(S, "txRoot"), 32),
    receiptRoot: readBytes(a[8], fieldAt(S, "receiptRoot"), 32),
    stateRoot: readBytes(a[9], fieldAt(S, "stateRoot"), 32),
    validatorSetHash: readBytes(a[10], fieldAt(S, "validatorSetHash"), 32),
  };
  assertCanonical(bytes, encodeHeader(h), S);
  return h;
}

export interface Block {
  header: Header;
  /** The exact header bytes; the block hash is SM3 of them. */
  headerBytes: Uint8Array;
  hash: Uint8Array;
  txs: SignedTx[];
}

export function blockHash(headerBytes: Uint8Array): Uint8Array {
  return sm3(headerBytes);
}

/** txRoot: Merkle root over the tx hashes, in block order. */
export function computeTxRoot(txs: readonly SignedTx[]): Uint8Array {
  return merkleRoot(txs.map((t) => t.hash));
}

/** On the wire: [headerBytes, [signedTxBytes...]], so every signed piece keeps its exact bytes. */
export function encodeBlock(headerBytes: Uint8Array, txs: readonly SignedTx[]): Uint8Array {
  return encode(blockFields(headerBytes, txs));
}

function blockFields(headerBytes: Uint8Array, txs: readonly SignedTx[]): unknown[] {
  return [headerBytes, txs.map((t) => t.bytes)];
}

export function makeBlock(header: Header, txs: SignedTx[]): { block: Block; bytes: Uint8Array } {
  const headerBytes = encodeHeader(header);
  return {
    block: { header, headerBytes, hash: blockHash(headerBytes), txs },
    bytes: encodeBlock(headerBytes, txs),
  };
}

/**
 * Decodes a block and checks everything that needs no state: structure, sizes, canonical
 * bytes, and that txRoot commits to exactly these transactions (`BLOCK_TX_ROOT_MISMATCH`).
 */
export function decodeBlock(bytes: Uint8Array): Block {
  const S = "Block";
  const a = readArray(decode(bytes, S, LIMITS.maxBlockBytes), fieldAt(S, ""), 2);
  const headerBytes = readBytes(a[0], fieldAt(S, "header"), { max: LIMITS.maxHeaderBytes });
  const header = decodeHeader(headerBytes);
  const rawTxs = readArray(a[1], fieldAt(S, "txs"), { min: 0, max: LIMITS.maxTxsPerBlock });
  const txs = rawTxs.map((t, i) =>
    decodeSignedTx(readBytes(t, fieldAt(S, `txs[${i}]`), { max: LIMITS.maxTxBytes })),
  );
  assertEncodesAs(bytes, blockFields(headerBytes, txs), S);
  if (!bytesEqual(computeTxRoot(txs), header.txRoot)) {
    throw new CustosError(
      "BLOCK_TX_ROOT_MISMATCH",
      `block ${header.height}: txRoot does not match its transactions`,
      {
        height: header.height,
      },
    );
  }
  return { header, headerBytes, hash: blockHash(headerBytes), txs };
}
