import { decode, encode, fieldAt, readArray, readBytes } from "@custos/codec";
import { blockHash, decodeHeader, type Header, LIMITS } from "@custos/types";
import { CustosError } from "@custos/utils";

/**
 * What a leader proposes (the bytes PBFT agrees on, in PrePrepare, NewView, prepared
 * certificates and decisions): the block's header bytes and its transactions' hashes, not the
 * transactions. Replicas already hold the transactions, decoded and verified, in their pools
 * (they were gossiped on admission); they take them from there and fetch only what they lack
 * (`[1, "txs", hashes]` on the sync protocol), so a full block's proposal is ~32 bytes a tx
 * instead of the whole tx, and nobody decodes a block it could assemble. The block hash is the
 * same as the full block's: SM3 of the header bytes (the engine's blockHash reads element 0).
 *
 * Wire: [headerBytes, txHashes concatenated (32 bytes each, block order)].
 */
export interface Proposal {
  headerBytes: Uint8Array;
  header: Header;
  hash: Uint8Array;
  txHashes: Uint8Array[];
}

export function encodeProposal(headerBytes: Uint8Array, txHashes: readonly Uint8Array[]): Uint8Array {
  const hashes = new Uint8Array(32 * txHashes.length);
  txHashes.forEach((h, i) => {
    hashes.set(h, 32 * i);
  });
  return encode([headerBytes, hashes]);
}

export function decodeProposal(bytes: Uint8Array): Proposal {
  const S = "Proposal";
  const a = readArray(decode(bytes, S, 32 * LIMITS.maxTxsPerBlock + 64 * 1024), fieldAt(S, ""), 2);
  const headerBytes = readBytes(a[0], fieldAt(S, "header"), { max: LIMITS.maxHeaderBytes });
  const hashes = readBytes(a[1], fieldAt(S, "txHashes"), { max: 32 * LIMITS.maxTxsPerBlock });
  if (hashes.byteLength % 32 !== 0)
    throw new CustosError("PROPOSAL_MALFORMED", "a proposal's tx hashes are 32 bytes each");
  const txHashes: Uint8Array[] = [];
  for (let i = 0; i < hashes.byteLength; i += 32) txHashes.push(hashes.subarray(i, i + 32));
  return { headerBytes, header: decodeHeader(headerBytes), hash: blockHash(headerBytes), txHashes };
}
