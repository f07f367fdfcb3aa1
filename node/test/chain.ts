import { sm2Sign } from "@custos/crypto";
import {
  CERT_VERSION,
  commitVoteBytes,
  computeReceiptRoot,
  computeTxRoot,
  encodeReceipt,
  makeBlock,
} from "@custos/types";
import { nullLogger } from "@custos/utils";
import { Executor } from "../src/execution/executor.js";
import { Ledger } from "../src/ledger/ledger.js";
import { nextStateRoot, type WriteSet } from "../src/state/overlay.js";
import { genesisMemberWrites } from "../src/system/members.js";
import type { TestChain, tx } from "./helpers.js";

export async function openLedger(dir: string, chain: TestChain): Promise<Ledger> {
  const writes: WriteSet = new Map();
  genesisMemberWrites(chain.genesis, writes);
  return Ledger.open(dir, chain.genesis, writes, nullLogger);
}

/** Builds, executes and commits one block the way the sealer does. */
export async function commitBlock(ledger: Ledger, chain: TestChain, txs: ReturnType<typeof tx>[]) {
  const head = ledger.head;
  const height = head.height + 1;
  const timestamp = head.header.timestamp + 1000;
  const result = await new Executor(chain.genesis, nullLogger).executeBlock(
    txs,
    { height, timestamp },
    ledger,
  );
  const receipts = result.receipts.map(encodeReceipt);
  const { block, bytes } = makeBlock(
    {
      ...head.header,
      height,
      prevHash: head.hash,
      timestamp,
      txRoot: computeTxRoot(txs),
      receiptRoot: computeReceiptRoot(receipts),
      stateRoot: nextStateRoot(head.header.stateRoot, result.writes),
    },
    txs,
  );
  const certificate = {
    version: CERT_VERSION,
    chainId: chain.genesis.chainId,
    height,
    view: 0,
    blockHash: block.hash,
    signatures: [
      {
        validator: 0,
        signature: sm2Sign(
          chain.validator.privateKey,
          commitVoteBytes(chain.genesis.chainId, height, 0, block.hash),
        ),
      },
    ],
  } as const;
  await ledger.commit({
    block,
    blockBytes: bytes,
    receipts,
    writes: result.writes,
    certificate: { ...certificate, signatures: [...certificate.signatures] },
  });
  return { block, result };
}
