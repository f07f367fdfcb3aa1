import { type Sm2KeyPair, sm2Sign } from "@custos/crypto";
import { type Block, CERT_VERSION, type CommitCertificate, commitVoteBytes } from "@custos/types";
import { nullLogger } from "@custos/utils";
import { buildBlock, commitOf } from "../src/chain/blockBuilder.js";
import { openChainLedger } from "../src/chain/openLedger.js";
import { Executor } from "../src/execution/executor.js";
import type { Ledger } from "../src/ledger/ledger.js";
import type { TestChain, tx } from "./helpers.js";

export async function openLedger(dir: string, chain: TestChain): Promise<Ledger> {
  return openChainLedger(dir, chain.genesis, nullLogger);
}

/** Builds, executes and commits one block the way the sealer does. */
export async function commitBlock(ledger: Ledger, chain: TestChain, txs: ReturnType<typeof tx>[]) {
  const head = ledger.head;
  const built = await buildBlock(chain.genesis.chainId, head, txs, {
    timestamp: head.header.timestamp + 1000,
    proposer: 0,
    view: 0,
    executor: new Executor(chain.genesis, nullLogger),
    state: ledger,
  });
  const certificate = soloCertificate(chain.genesis.chainId, built.block, chain.validator);
  await ledger.commit(commitOf(built, certificate));
  return { block: built.block, result: { receipts: built.receipts, writes: built.writes } };
}

/** The certificate of a one-validator chain: validator 0's commit vote. */
function soloCertificate(chainId: string, block: Block, key: Sm2KeyPair): CommitCertificate {
  const { height, view } = block.header;
  return {
    version: CERT_VERSION,
    chainId,
    height,
    view,
    blockHash: block.hash,
    signatures: [
      {
        validator: 0,
        signature: sm2Sign(key.privateKey, commitVoteBytes(chainId, height, view, block.hash)),
      },
    ],
  };
}
