import {
  type Block,
  type CommitCertificate,
  computeReceiptRoot,
  computeTxRoot,
  encodeReceipt,
  HEADER_VERSION,
  makeBlock,
  type Receipt,
  type SignedTx,
} from "@custos/types";
import type { Executor } from "../execution/executor.js";
import type { BlockCommit, ChainHead } from "../ledger/ledger.js";
import type { StateReader, WriteSet } from "../state/overlay.js";

export interface BuiltBlock {
  block: Block;
  bytes: Uint8Array;
  receipts: Receipt[];
  receiptBytes: Uint8Array[];
  writes: WriteSet;
}

/** The state a block executes on, and the state root its writes would give (the ledger). */
export interface ChainState extends StateReader {
  stateRootAfter(writes: WriteSet): Uint8Array;
}

/**
 * Executes `txs` on top of `head` and builds the block that carries the results: txRoot,
 * receiptRoot and the stateRoot of the state after it (the state tree's root) in its header
 * (execute-before-vote: a validator that executes the same txs on the same state gets the same
 * header).
 */
export async function buildBlock(
  chainId: string,
  head: ChainHead,
  txs: SignedTx[],
  o: {
    timestamp: number;
    proposer: number;
    view: number;
    executor: Executor;
    state: ChainState;
    /**
     * The Merkle root of exactly these txs' hashes, when the caller has computed it already (a
     * replica checks a proposal's txRoot against its list of hashes before it assembles the txs
     * by those hashes); computed here otherwise.
     */
    txRoot?: Uint8Array;
  },
): Promise<BuiltBlock> {
  const height = head.height + 1;
  const result = await o.executor.executeBlock(txs, { height, timestamp: o.timestamp }, o.state);
  const receiptBytes = result.receipts.map(encodeReceipt);
  const { block, bytes } = makeBlock(
    {
      version: HEADER_VERSION,
      chainId,
      height,
      prevHash: head.hash,
      timestamp: o.timestamp,
      proposer: o.proposer,
      view: o.view,
      txRoot: o.txRoot ?? computeTxRoot(txs),
      receiptRoot: computeReceiptRoot(receiptBytes),
      stateRoot: o.state.stateRootAfter(result.writes),
      validatorSetHash: head.validatorSetHash,
    },
    txs,
  );
  return { block, bytes, receipts: result.receipts, receiptBytes, writes: result.writes };
}

/**
 * What the ledger stores for a built block once a certificate finalises it. `blockBytes` are the
 * bytes the block was decided in (a synced block's as its peer sent them); a block built here
 * encodes to the same bytes.
 */
export function commitOf(
  built: BuiltBlock,
  certificate: CommitCertificate,
  blockBytes: Uint8Array = built.bytes,
): BlockCommit {
  return { block: built.block, blockBytes, receipts: built.receiptBytes, writes: built.writes, certificate };
}
